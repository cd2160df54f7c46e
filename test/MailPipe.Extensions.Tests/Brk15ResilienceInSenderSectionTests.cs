using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// brk15res: the resilience settings kept in the sender's own section (<c>Smtp:Resilience</c>, read by
/// <c>AddStandardResilience(configuration.GetSection("Smtp:Resilience"))</c>) stopped the start: the sender's check of
/// unknown keys knew only the sections of other senders, and said "Smtp:Resilience (keys Retry:MaxRetryAttempts) is
/// not a MailPipe setting of Smtp, and no other MailPipe sender reads it. For a second sender, register it:
/// services.AddKeyedMailPipe("Resilience", ...)". A section that AddStandardResilience reads is now left out of that
/// check too (its own check names a typo in it); a nested section nobody reads is still an error.
/// </summary>
public sealed class Brk15ResilienceInSenderSectionTests
{
    [Fact]
    public async Task The_resilience_section_nested_in_the_senders_section_starts_and_is_read()
    {
        using var host = Build(new()
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
        using var host = Build(new() { ["Smtp:Resilience:Retry:MaxRetryAttempt"] = "5" });

        var start = () => host.StartAsync();

        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("Smtp:Resilience:Retry:MaxRetryAttempt is not a MailPipe.Resilience setting.");
    }

    [Fact]
    public async Task A_nested_section_nobody_reads_is_still_an_error()
    {
        using var host = Build(new() { ["Smtp:Resilence:Retry:MaxRetryAttempts"] = "5" });

        var start = () => host.StartAsync();

        (await start.Should().ThrowAsync<OptionsValidationException>())
            .Which.Failures.Should().ContainSingle().Which.Should().StartWith("Smtp:Resilence (keys Retry:MaxRetryAttempts) is not a MailPipe setting of Smtp");
    }

    private static IHost Build(Dictionary<string, string?> settings)
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
