using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The resilience sections of a default and a keyed sender in the layout <c>AddMailPipe</c> allows for theirs:
/// <c>SmtpResilience</c> and <c>SmtpResilience:Bulk</c>. The default sender's section took every
/// <c>SmtpResilience:Bulk:*</c> key for a typo and the start failed ("SmtpResilience:Bulk:Retry:MaxRetryAttempts is not
/// a MailPipe.Resilience setting"), although the keyed sender's <c>AddStandardResilience</c> reads that section.
/// And the resilience section kept inside the sender's own section (<c>Smtp:Resilience</c>).
/// </summary>
public sealed class NestedResilienceSectionTests
{
    [Fact]
    public async Task A_keyed_senders_resilience_section_nested_in_the_default_ones_starts_and_each_reads_its_own()
    {
        using var host = Build(new()
        {
            ["SmtpResilience:Retry:MaxRetryAttempts"] = "2",
            ["SmtpResilience:Bulk:Retry:MaxRetryAttempts"] = "1",
            ["SmtpResilience:Bulk:Retry:Delay"] = "00:00:05",
        });
        await host.StartAsync();
        var monitor = host.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>();
        monitor.Get(Options.DefaultName).Retry.MaxRetryAttempts.Should().Be(2);
        monitor.Get(Options.DefaultName).Retry.Delay.Should().Be(TimeSpan.FromSeconds(2));
        monitor.Get("bulk").Retry.MaxRetryAttempts.Should().Be(1);
        monitor.Get("bulk").Retry.Delay.Should().Be(TimeSpan.FromSeconds(5));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_typo_in_the_nested_section_is_still_named_by_the_keyed_senders_check()
    {
        using var host = Build(new() { ["SmtpResilience:Bulk:Retry:MaxRetryAttempt"] = "1" });
        var start = () => host.StartAsync();
        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("SmtpResilience:Bulk:Retry:MaxRetryAttempt is not a MailPipe.Resilience setting.");
    }

    private static IHost Build(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        builder.Services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience:Bulk"));
        return builder.Build();
    }

    // brk15res: the resilience settings kept in the sender's own section (Smtp:Resilience, read by
    // AddStandardResilience(configuration.GetSection("Smtp:Resilience"))) stopped the start: the sender's check of unknown
    // keys knew only the sections of other senders ("Smtp:Resilience (keys Retry:MaxRetryAttempts) is not a MailPipe
    // setting of Smtp ..."). A section that AddStandardResilience reads is now left out of that check too (its own check
    // names a typo in it); a nested section nobody reads is still an error.
    [Fact]
    public async Task The_resilience_section_nested_in_the_senders_section_starts_and_is_read()
    {
        using var host = BuildInSenderSection(new()
        {
            ["Smtp:Resilience:Retry:MaxRetryAttempts"] = "5",
            ["Smtp:Bulk:Resilience:AttemptTimeout:Timeout"] = "00:00:45",
        });

        await host.StartAsync();

        var monitor = host.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>();
        monitor.Get(Options.DefaultName).Retry.MaxRetryAttempts.Should().Be(5);
        monitor.Get("bulk").AttemptTimeout.Timeout.Should().Be(TimeSpan.FromSeconds(45));
        host.Services.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
        await host.StopAsync();
    }

    [Fact]
    public async Task A_typo_inside_it_is_named_by_the_resilience_check()
    {
        using var host = BuildInSenderSection(new() { ["Smtp:Resilience:Retry:MaxRetryAttempt"] = "5" });

        var start = () => host.StartAsync();

        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("Smtp:Resilience:Retry:MaxRetryAttempt is not a MailPipe.Resilience setting.");
    }

    [Fact]
    public async Task A_nested_section_nobody_reads_is_still_an_error()
    {
        using var host = BuildInSenderSection(new() { ["Smtp:Resilence:Retry:MaxRetryAttempts"] = "5" });

        var start = () => host.StartAsync();

        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("Smtp:Resilence (keys Retry:MaxRetryAttempts) is not a MailPipe setting of Smtp");
    }

    private static IHost BuildInSenderSection(Dictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Smtp:Host"] = "127.0.0.1",
            ["Smtp:TlsMode"] = "None",
            ["Smtp:Bulk:Host"] = "127.0.0.1",
            ["Smtp:Bulk:TlsMode"] = "None",
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("Smtp:Resilience"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"))
            .AddStandardResilience(builder.Configuration.GetSection("Smtp:Bulk:Resilience"));
        return builder.Build();
    }
}
