using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>A peer's probes that held: what the caller gets when it cancels during a retry delay with nothing delivered.</summary>
public class RetryDelayCancellationProbeTests
{
    [Fact]
    public async Task Cancelled_during_the_delay_after_a_message_not_sent_throws_OperationCanceledException_not_an_unknown_outcome()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var calls = 0;
        Task<SmtpSendResult> Send(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.NotSent(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "refused")));
        }

        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(2), UseJitter = false }, time);
        using var cts = new CancellationTokenSource();
        var send = pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), Send, cts.Token);
        calls.Should().Be(1);
        await cts.CancelAsync();

        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<OperationCanceledException>()).Which;
        thrown.Should().NotBeOfType<SmtpOutcomeUnknownException>("nothing was delivered: the caller may send again");
        calls.Should().Be(1);
    }
}
