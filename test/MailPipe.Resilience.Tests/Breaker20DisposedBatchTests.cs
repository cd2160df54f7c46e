using MailPipe.Resilience;
using Polly;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Breaker 20: the inner sender disposed while a resilient batch is under way (an application shutting down): the batch
/// returns one result per message, the dropped ones NotSent with the ObjectDisposedException, never the exception alone
/// in place of the results (which hid the messages already accepted, so that a retry delivered them twice).
/// </summary>
public class Breaker20DisposedBatchTests
{
    [Fact]
    public async Task A_batch_whose_inner_sender_is_disposed_under_way_returns_every_result()
    {
        var accepted = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "a@example.test"), "Subject: a\r\n\r\nx\r\n"u8.ToArray());
        var dropped = SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "b@example.test"), "Subject: b\r\n\r\nx\r\n"u8.ToArray());
        await using var sender = new ResilientSmtpSender(new DisposedUnderWay(accepted), ResiliencePipeline<SmtpSendResult>.Empty);

        var results = await sender.SendBatchAsync([accepted, dropped]);

        results.Should().HaveCount(2);
        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted);
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[1].Exception.Should().BeOfType<ObjectDisposedException>();
        results[1].Envelope.Should().BeSameAs(dropped.Envelope);
    }

    /// <summary>Accepts one message; every other one fails as a message dropped by the sender's disposal does.</summary>
    private sealed class DisposedUnderWay(SmtpMessage accepted) : ISmtpSender
    {
        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default) =>
            message == accepted
                ? Task.FromResult(SmtpSendResult.Accepted(message.Envelope))
                : Task.FromException<SmtpSendResult>(new ObjectDisposedException(nameof(SmtpSender), "The sender was disposed while the message waited for a connection; it was not sent."));

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
