using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>A peer's probes of what the caller gets when the standard pipeline's total timeout ends the retries.</summary>
public class TotalTimeoutAfterThrownAttemptsBreakTests
{
    [Fact]
    public async Task The_total_timeout_after_attempts_that_threw_gives_NotSent_TimedOut_not_a_NullReferenceException()
    {
        // Each attempt's delegate throws a transient I/O failure (say its own reconnect code): retried, nothing merged.
        // The total timeout then ended the retries and the merged result was built from no result at all.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 10;
        options.Retry.Delay = TimeSpan.FromSeconds(5);
        options.Retry.BackoffType = Polly.DelayBackoffType.Constant;
        options.Retry.UseJitter = false;
        options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(12);
        options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(10); // shorter than the total, as the pipeline requires
        options.CircuitBreaker.MinimumThroughput = 100;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);
        var calls = 0;

        var send = pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
        {
            calls++;
            return Task.FromException<SmtpSendResult>(new IOException("The proxy reset the connection."));
        });
        for (var i = 0; i < 100 && !send.IsCompleted; i++)
        {
            await Task.Delay(10);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.Attempts.Should().Be(calls);
        calls.Should().BeGreaterThan(1);
    }
}
