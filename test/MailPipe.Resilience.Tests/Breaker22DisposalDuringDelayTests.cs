using Microsoft.Extensions.Time.Testing;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// breaker22: a message waiting in the retry's delay when the resilient sender is disposed ends at the disposal
/// (ISmtpSender: "ObjectDisposedException: the sender is disposed, or was disposed while the message waited"), with
/// the merged result when an earlier attempt was accepted — not after the delay (up to MaxDelay, 5 min by default).
/// The clock never moves: the delay cannot end by itself.
/// </summary>
public class Breaker22DisposalDuringDelayTests
{
    [Fact]
    public async Task A_message_in_the_retry_delay_gets_ObjectDisposedException_when_the_sender_is_disposed()
    {
        var inner = new StubSender(m => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(450, "4.2.0 busy"))], null, null));
        var sender = Resilient(inner);

        var send = sender.SendAsync(Message("busy@example.test"));
        inner.Calls.Should().Be(1);
        send.IsCompleted.Should().BeFalse("the retry waits for its delay on a clock that does not move");
        await sender.DisposeAsync();

        await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<ObjectDisposedException>();
        inner.Calls.Should().Be(1);
        using var caller = new CancellationTokenSource();
        await sender.Awaiting(s => s.SendAsync(Message("later@example.test"), caller.Token)).Should().ThrowAsync<ObjectDisposedException>("a send after the disposal, with or without a token of the caller's");
        await sender.Awaiting(s => s.SendAsync(Message("later@example.test"))).Should().ThrowAsync<ObjectDisposedException>();
        inner.Calls.Should().Be(1);
    }

    [Fact]
    public async Task A_message_in_the_retry_delay_after_a_partial_acceptance_returns_the_merged_result_when_the_sender_is_disposed()
    {
        var inner = new StubSender(m => SmtpSendResult.Create(
            m.Envelope,
            SmtpSendOutcome.Accepted,
            new SmtpReply(250, "ok"),
            [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(250, "ok")), new SmtpRecipientResult(m.Envelope.Recipients[1], new SmtpReply(450, "4.2.0 busy"))],
            new SmtpReply(354, "go"),
            new SmtpReply(250, "queued")));
        var sender = Resilient(inner);

        var send = sender.SendAsync(Message("a@example.test", "b@example.test"));
        inner.Calls.Should().Be(1);
        await sender.DisposeAsync();

        var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "a@ has the message: an exception would hide it and a resend deliver it twice");
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450);
        inner.Calls.Should().Be(1);
    }

    [Fact]
    public async Task A_batch_whose_messages_wait_for_retries_returns_every_result_when_the_sender_is_disposed()
    {
        var inner = new StubSender(m => m.Envelope.Recipients.Count == 1
            ? SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(450, "4.2.0 busy"))], null, null)
            : SmtpSendResult.Create(
                m.Envelope,
                SmtpSendOutcome.Accepted,
                new SmtpReply(250, "ok"),
                [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(250, "ok")), new SmtpRecipientResult(m.Envelope.Recipients[1], new SmtpReply(450, "4.2.0 busy"))],
                new SmtpReply(354, "go"),
                new SmtpReply(250, "queued")));
        var sender = Resilient(inner);

        var batch = sender.SendBatchAsync([Message("busy@example.test"), Message("a@example.test", "b@example.test")]);
        inner.Calls.Should().Be(2);
        await sender.DisposeAsync();

        var results = await batch.WaitAsync(TimeSpan.FromSeconds(30));
        results[0].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[0].Exception.Should().BeOfType<ObjectDisposedException>();
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted);
        results[1].Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450);
        inner.Calls.Should().Be(2);
    }

    private static ResilientSmtpSender Resilient(ISmtpSender inner) => new(
        inner,
        SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(30), UseJitter = false, ThrottledDelay = TimeSpan.Zero }, new FakeTimeProvider()));

    private sealed class StubSender(Func<SmtpMessage, SmtpSendResult> reply) : ISmtpSender
    {
        private bool _disposed;

        public int Calls { get; private set; }

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Calls++;
            return Task.FromResult(reply(message));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync()
        {
            _disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
