using System.Collections.Concurrent;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>A peer's probes of <see cref="ResilientSmtpSender.SendBatchAsync"/> against the <see cref="ISmtpSender"/> contract.</summary>
public class ResilientSenderBatchBreakTests
{
    /// <summary>Stands for <see cref="SmtpSender"/>: refuses an envelope that cannot be written, accepts the rest and records them.</summary>
    private sealed class RecordingSender : ISmtpSender
    {
        public ConcurrentQueue<SmtpMessage> Sent { get; } = new();

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(message.Envelope.Size ?? 0, nameof(SmtpEnvelope.Size));
            Sent.Enqueue(message);
            return Task.FromResult(SmtpSendResult.Accepted(message.Envelope));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>
    /// Session 20 (new user): a null message in the list was "Value cannot be null. (Parameter 'messages')", as if the
    /// list were null; the error now names its position and says that nothing was sent, as the core's senders do.
    /// </summary>
    [Fact]
    public async Task A_batch_with_a_null_message_names_its_position_and_sends_nothing()
    {
        var inner = new RecordingSender();
        await using var sender = inner.WithResilience(SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero }));

        var thrown = await sender.Awaiting(s => s.SendBatchAsync([Message("a@example.test"), null!])).Should().ThrowAsync<ArgumentNullException>();

        thrown.Which.ParamName.Should().Be("messages");
        thrown.Which.Message.Should().Contain("messages[1] is null").And.Contain("nothing was sent");
        inner.Sent.Should().BeEmpty();
    }

    [Fact]
    public async Task A_batch_with_an_envelope_that_cannot_be_written_sends_nothing_and_throws_ArgumentException()
    {
        // ISmtpSender.SendBatchAsync: "ArgumentException: An envelope cannot be written (nothing was sent)". The wrapper
        // started every message at once, so the valid first one was delivered and the caller, told "nothing was sent",
        // would send it again.
        var inner = new RecordingSender();
        await using var sender = inner.WithResilience(SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero }));
        var valid = Message("a@example.test");
        var invalid = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "b@example.test") { Size = -1 }, "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        await sender.Awaiting(s => s.SendBatchAsync([valid, invalid])).Should().ThrowAsync<ArgumentException>();

        inner.Sent.Should().BeEmpty("an envelope that cannot be written is checked before anything is sent");
    }
}
