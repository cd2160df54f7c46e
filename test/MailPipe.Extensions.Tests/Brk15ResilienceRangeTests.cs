using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// brk15res: a SmtpResilience value that reads but is out of Polly's range stopped the start with Polly's words only
/// ("MailPipe.Resilience: The 'TimeoutStrategyOptions' are invalid. Validation Errors: The field Timeout must be between
/// ..."): neither the key (AttemptTimeout or TotalRequestTimeout? both are "TimeoutStrategyOptions" with a "Timeout")
/// nor the value, and only the first strategy's problems. The Smtp section names the key and the value
/// ("Smtp:Port must be between 1 and 65535; it is 70000."); so does this one now, for every problem at once.
/// </summary>
public sealed class Brk15ResilienceRangeTests
{
    [Theory]
    [InlineData("AttemptTimeout:Timeout", "00:00:00.001", "SmtpResilience:AttemptTimeout:Timeout must be between 00:00:00.0100000 and 1.00:00:00; it is 00:00:00.0010000.")]
    [InlineData("TotalRequestTimeout:Timeout", "2.00:00:00", "SmtpResilience:TotalRequestTimeout:Timeout must be between 00:00:00.0100000 and 1.00:00:00; it is 2.00:00:00.")]
    [InlineData("Retry:MaxRetryAttempts", "-1", "SmtpResilience:Retry:MaxRetryAttempts must be between 0 (no retries) and 2147483647; it is -1.")]
    [InlineData("Retry:Delay", "-00:00:01", "SmtpResilience:Retry:Delay must be between 00:00:00 and 1.00:00:00; it is -00:00:01.")]
    [InlineData("Retry:ThrottledDelay", "2.00:00:00", "SmtpResilience:Retry:ThrottledDelay must be between 00:00:00 and 1.00:00:00; it is 2.00:00:00.")]
    [InlineData("CircuitBreaker:FailureRatio", "1.5", "SmtpResilience:CircuitBreaker:FailureRatio must be between 0 and 1; it is 1.5.")]
    [InlineData("CircuitBreaker:MinimumThroughput", "1", "SmtpResilience:CircuitBreaker:MinimumThroughput must be between 2 and 2147483647; it is 1.")]
    [InlineData("CircuitBreaker:BreakDuration", "00:00:00.1", "SmtpResilience:CircuitBreaker:BreakDuration must be between 00:00:00.5000000 and 1.00:00:00; it is 00:00:00.1000000.")]
    public async Task A_value_out_of_range_is_named_by_its_key_with_the_value(string key, string value, string expected)
    {
        var failures = await FailuresAsync(new() { ["SmtpResilience:" + key] = value });

        failures.Should().Equal(expected);
    }

    [Fact]
    public async Task Every_strategy_s_problem_is_reported_at_once()
    {
        var failures = await FailuresAsync(new()
        {
            ["SmtpResilience:TotalRequestTimeout:Timeout"] = "2.00:00:00",
            ["SmtpResilience:Retry:MaxRetryAttempts"] = "-2",
            ["SmtpResilience:CircuitBreaker:MinimumThroughput"] = "1",
            ["SmtpResilience:AttemptTimeout:Timeout"] = "00:00:00.001",
        });

        failures.Should().Equal(
            "SmtpResilience:TotalRequestTimeout:Timeout must be between 00:00:00.0100000 and 1.00:00:00; it is 2.00:00:00.",
            "SmtpResilience:Retry:MaxRetryAttempts must be between 0 (no retries) and 2147483647; it is -2.",
            "SmtpResilience:CircuitBreaker:MinimumThroughput must be between 2 and 2147483647; it is 1.",
            "SmtpResilience:AttemptTimeout:Timeout must be between 00:00:00.0100000 and 1.00:00:00; it is 00:00:00.0010000.");
    }

    [Fact]
    public async Task Options_set_in_code_are_named_by_their_properties()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(o => o.Retry.MaxRetryAttempts = -1);
        await using var provider = services.BuildServiceProvider();

        var read = () => provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        read.Should().Throw<OptionsValidationException>().Which.Failures.Should().Equal("SmtpStandardResilienceOptions.Retry.MaxRetryAttempts must be between 0 (no retries) and 2147483647; it is -1.");
    }

    private static async Task<IReadOnlyList<string>> FailuresAsync(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience(configuration.GetSection("SmtpResilience"));
        await using var provider = services.BuildServiceProvider();
        try
        {
            provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);
            return [];
        }
        catch (OptionsValidationException failure)
        {
            return [.. failure.Failures];
        }
    }
}
