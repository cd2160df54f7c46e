using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Guard: the total timeout that ends an attempt after its end of data was written (all of it pipelined with BDAT, so no
/// reply had come yet) leaves the caller with Unknown: the server may have the message. b797653 made a merged result
/// without any reply NotSent TimedOut (meant for refused connects); an attempt that may have delivered is never that.
/// </summary>
public class TotalTimeoutAfterUnknownAttemptTests
{
    [Fact]
    public async Task An_attempt_cut_off_after_its_end_of_data_without_any_reply_stays_Unknown()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 5;
        options.Retry.Delay = TimeSpan.FromSeconds(1);
        options.Retry.BackoffType = Polly.DelayBackoffType.Constant;
        options.Retry.UseJitter = false;
        options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(12);
        options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(10);
        options.CircuitBreaker.MinimumThroughput = 100;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);
        var calls = 0;

        var send = pipeline.SendWithRetryAsync(Message("a@example.test"), async (m, token) =>
        {
            if (++calls == 1)
            {
                return SmtpSendResult.NotSent(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "Connection refused.") { IsTransient = true });
            }

            // The second attempt wrote its whole transaction and waits for the first reply when the total timeout fires.
            try
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
            }
            catch (OperationCanceledException ex)
            {
                var unknown = SmtpSendResult.Unknown(m.Envelope, new SmtpException(SmtpErrorCode.TimedOut, "Cancelled after the end of data was written."));
                throw new SmtpOutcomeUnknownException(unknown, ex, token);
            }

            throw new InvalidOperationException("not reached");
        });
        for (var i = 0; i < 100 && !send.IsCompleted; i++)
        {
            await Task.Delay(10);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
        calls.Should().Be(2);
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
    }
}
