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
}
