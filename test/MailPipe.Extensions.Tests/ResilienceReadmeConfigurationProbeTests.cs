using System.Text;
using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Polly;

namespace MailPipe.Extensions.Tests;

/// <summary>A peer's probe that held: the section of MailPipe.Resilience's README, as written there, is read and gives the documented defaults.</summary>
public sealed class ResilienceReadmeConfigurationProbeTests
{
    // The JSON of src/MailPipe.Resilience/README.md ("Those are the defaults").
    private const string ReadmeJson = """
        {
          "SmtpResilience": {
            "TotalRequestTimeout": { "Timeout": "00:05:00" },
            "Retry": { "MaxRetryAttempts": 3, "Delay": "00:00:02", "MaxDelay": "00:05:00", "BackoffType": "Exponential",
                       "UseJitter": true, "ThrottledDelay": "00:00:30", "RetryUnknownOutcome": false },
            "CircuitBreaker": { "FailureRatio": 0.5, "MinimumThroughput": 10, "SamplingDuration": "00:00:30", "BreakDuration": "00:00:15" },
            "AttemptTimeout": { "Timeout": "00:01:30" }
          }
        }
        """;

    [Fact]
    public async Task The_READMEs_section_is_accepted_and_equals_the_defaults()
    {
        using var json = new MemoryStream(Encoding.UTF8.GetBytes(ReadmeJson));
        var configuration = new ConfigurationBuilder().AddJsonStream(json).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();

        var read = provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);
        var defaults = new SmtpStandardResilienceOptions();

        provider.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
        read.TotalRequestTimeout.Timeout.Should().Be(defaults.TotalRequestTimeout.Timeout).And.Be(TimeSpan.FromMinutes(5));
        read.AttemptTimeout.Timeout.Should().Be(defaults.AttemptTimeout.Timeout).And.Be(TimeSpan.FromSeconds(90));
        read.Retry.MaxRetryAttempts.Should().Be(defaults.Retry.MaxRetryAttempts).And.Be(3);
        read.Retry.Delay.Should().Be(defaults.Retry.Delay);
        read.Retry.MaxDelay.Should().Be(defaults.Retry.MaxDelay);
        read.Retry.BackoffType.Should().Be(defaults.Retry.BackoffType).And.Be(DelayBackoffType.Exponential);
        read.Retry.UseJitter.Should().Be(defaults.Retry.UseJitter).And.BeTrue();
        read.Retry.ThrottledDelay.Should().Be(defaults.Retry.ThrottledDelay);
        read.Retry.RetryUnknownOutcome.Should().Be(defaults.Retry.RetryUnknownOutcome).And.BeFalse();
        read.CircuitBreaker.FailureRatio.Should().Be(defaults.CircuitBreaker.FailureRatio).And.Be(0.5);
        read.CircuitBreaker.MinimumThroughput.Should().Be(defaults.CircuitBreaker.MinimumThroughput);
        read.CircuitBreaker.SamplingDuration.Should().Be(defaults.CircuitBreaker.SamplingDuration);
        read.CircuitBreaker.BreakDuration.Should().Be(defaults.CircuitBreaker.BreakDuration);
    }
}
