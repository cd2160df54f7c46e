using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// <see cref="ISmtpSender.SendBatchAsync"/> promises, when its token is cancelled, an
/// <see cref="SmtpBatchCanceledException"/> whose <c>Results</c> has one result per message (and
/// MailPipe.Resilience's sender, as <see cref="AsyncSmtpSession"/>'s batches, throws it for a token cancelled before
/// the call too). <see cref="SmtpSender"/> threw a plain <see cref="OperationCanceledException"/> for a token already
/// cancelled, with no results: a caller that catches SmtpBatchCanceledException to requeue what was not sent missed it.
/// </summary>
public class PreCancelledSenderBatchTests
{
    [Fact]
    public async Task A_batch_given_a_cancelled_token_throws_SmtpBatchCanceledException_with_every_message_NotSent()
    {
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var messages = Enumerable.Range(0, 3)
            .Select(i => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", $"r{i}@example.test"), Encoding.ASCII.GetBytes("Subject: x\r\n\r\nbody\r\n")))
            .ToArray();

        var thrown = (await FluentActions.Awaiting(() => sender.SendBatchAsync(messages, new CancellationToken(canceled: true)))
            .Should().ThrowAsync<SmtpBatchCanceledException>()).Which;

        thrown.Results.Should().HaveCount(3).And.OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
        thrown.Results.Select(r => r.Envelope).Should().Equal(messages.Select(m => m.Envelope));
        thrown.Results.Should().OnlyContain(r => r.Exception is OperationCanceledException);
        server.Received.Should().BeEmpty();
    }
}
