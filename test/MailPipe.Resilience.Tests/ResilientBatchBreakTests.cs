using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Breaker probes of <see cref="ResilientSmtpSender.SendBatchAsync"/> under the caller's cancellation: the messages
/// already accepted or of unknown outcome must not be lost behind one message's cancellation.
/// </summary>
public class ResilientBatchBreakTests
{
    /// <summary>A sender whose first message is accepted, second waits for the token, third is cut after its end of data.</summary>
    private sealed class FakeSender : ISmtpSender
    {
        public int Calls;

        public async Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            switch (message.Envelope.Recipients[0].Address)
            {
                case "accepted@example.test":
                    return SmtpSendResult.Accepted(message.Envelope);
                case "waits@example.test":
                    await Task.Delay(Timeout.Infinite, cancellationToken);
                    throw new InvalidOperationException("unreachable");
                default:
                    await Task.Delay(Timeout.Infinite, cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default);
                    var unknown = SmtpSendResult.Unknown(message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "cut after the dot"));
                    throw new SmtpOutcomeUnknownException(unknown, null, cancellationToken);
            }
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_cancelled_batch_throws_SmtpBatchCanceledException_with_the_accepted_and_unknown_outcomes()
    {
        var inner = new FakeSender();
        await using var sender = inner.WithResilience(SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero }));
        using var cts = new CancellationTokenSource();
        var batch = sender.SendBatchAsync([Message("waits@example.test"), Message("accepted@example.test"), Message("unknown@example.test")], cts.Token);
        while (Volatile.Read(ref inner.Calls) < 3)
        {
            await Task.Yield();
        }

        await cts.CancelAsync();

        var thrown = (await batch.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<SmtpBatchCanceledException>()).Which;
        thrown.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown);
        inner.Calls.Should().Be(3, "nothing is retried after the cancellation");
    }
}
