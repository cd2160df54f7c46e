using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Session 13: a total timeout not longer than one attempt's was taken silently: it cuts every slow attempt, after its
/// end of data too (an unknown outcome, never retried), and leaves no time for a retry. Microsoft.Extensions.Http.Resilience
/// refuses it; so does MailPipe.Resilience now, when the pipeline is built and at start-up, naming both keys.
/// </summary>
public sealed class ResilienceTimeoutOrderTests
{
    [Fact]
    public void A_total_timeout_not_longer_than_the_attempt_timeout_is_refused_when_the_pipeline_is_built()
    {
        var options = new SmtpStandardResilienceOptions();
        options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(30);

        var build = () => SmtpResiliencePipelines.CreateStandard(options);

        build.Should().Throw<ArgumentException>().WithMessage("*TotalRequestTimeout*00:00:30*AttemptTimeout*00:01:30*");
    }

    [Fact]
    public async Task A_total_timeout_not_longer_than_the_attempt_timeout_stops_the_start_naming_both_keys()
    {
        var failures = await StartFailuresAsync(new() { ["SmtpResilience:TotalRequestTimeout:Timeout"] = "00:01:00" });

        failures.Should().ContainSingle().Which.Should().Contain("TotalRequestTimeout:Timeout (00:01:00)").And.Contain("AttemptTimeout:Timeout (00:01:30)");
    }

    [Fact]
    public async Task The_defaults_start()
    {
        (await StartFailuresAsync([])).Should().BeEmpty();
    }

    private static async Task<IReadOnlyList<string>> StartFailuresAsync(Dictionary<string, string?> settings)
    {
        settings.TryAdd("Smtp:Host", "127.0.0.1");
        settings.TryAdd("Smtp:TlsMode", "None");
        return await OptionsValidationTests.HostStartFailuresAsync(settings, (mailPipe, configuration) => mailPipe.AddStandardResilience(configuration.GetSection("SmtpResilience")));
    }
}
