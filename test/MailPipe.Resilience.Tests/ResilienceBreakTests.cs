using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Breaker probes of MailPipe.Resilience: a batch or a retry that ends early (cancellation, disposal) must not lose the messages
/// already accepted or of unknown outcome (a resend would deliver them twice).
/// </summary>
public class ResilienceBreakTests
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

    [Fact]
    public async Task A_sender_disposed_during_the_retry_after_a_partial_acceptance_still_returns_the_merged_result()
    {
        // Attempt 1: a@ accepted, b@ 450 (the message accepted); attempt 2 (b@ only): the sender was disposed meanwhile.
        var calls = 0;
        Task<SmtpSendResult> Send(SmtpMessage m, CancellationToken ct)
        {
            ObjectDisposedException.ThrowIf(++calls == 2, typeof(SmtpSender));

            return Task.FromResult(AcceptedForFirstBusyForSecond(m));
        }

        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero });
        var result = await pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), Send);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "a@ has the message: an exception would hide it and a resend deliver it twice");
        result.Attempts.Should().Be(2);
        result.Recipients[0].Reply!.Code.Should().Be(250);
        result.Recipients[1].Reply!.Code.Should().Be(450);
        calls.Should().Be(2);
    }

    [Fact]
    public async Task Cancelled_during_the_retry_delay_after_a_partial_acceptance_the_caller_learns_who_has_the_message()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var calls = 0;
        Task<SmtpSendResult> Send(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(AcceptedForFirstBusyForSecond(m));
        }

        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(2), UseJitter = false }, time);
        using var cts = new CancellationTokenSource();
        var send = pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), Send, cts.Token);
        calls.Should().Be(1);
        await cts.CancelAsync();

        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;
        thrown.Result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        thrown.Result.Recipients[0].Reply!.Code.Should().Be(250);
        thrown.Result.Recipients[1].Reply!.Code.Should().Be(450);
        calls.Should().Be(1, "the cancelled delay ends the retries");
    }

    [Fact]
    public async Task The_merged_attempts_count_the_transactions_the_sender_made_itself()
    {
        // Attempt 1: the pooled sender sent it twice itself (a fresh connection after a drop), then 451; attempt 2: accepted.
        var calls = 0;
        Task<SmtpSendResult> Send(SmtpMessage m, CancellationToken ct) => Task.FromResult(++calls == 1
            ? SmtpSendResult.Refused(m.Envelope, new SmtpReply(451, "4.3.0 try later")).WithAttempts(2)
            : SmtpSendResult.Accepted(m.Envelope));

        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero });
        var result = await pipeline.SendWithRetryAsync(Message("a@example.test"), Send);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(3, "three transactions were made for it");
    }

    /// <summary>The message accepted, its first recipient 250 and its second 450 (a partial acceptance to retry).</summary>
    private static SmtpSendResult AcceptedForFirstBusyForSecond(SmtpMessage m) => SmtpSendResult.Create(
        m.Envelope,
        SmtpSendOutcome.Accepted,
        new SmtpReply(250, "ok"),
        [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(250, "ok")), new SmtpRecipientResult(m.Envelope.Recipients[1], new SmtpReply(450, "4.2.0 mailbox busy"))],
        null,
        new SmtpReply(250, "queued"));
}
