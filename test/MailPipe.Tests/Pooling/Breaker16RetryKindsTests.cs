using System.IO.Pipelines;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): a connection lost before a message's MAIL, in the middle of a coalesced batch, with
/// each kind of content: the message is sent once more on a fresh connection when nothing of it was read, else NotSent
/// and transient; the server never holds a part or a second copy.
/// </summary>
public sealed class Breaker16RetryKindsTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("one-pass-stream", true)]
    [InlineData("one-pass-stream", false)]
    [InlineData("writer", true)]
    [InlineData("writer", false)]
    [InlineData("pipe-reader", true)]
    [InlineData("pipe-reader", false)]
    [InlineData("seekable-stream", true)]
    public async Task A_message_not_yet_read_whose_connection_is_lost_before_its_MAIL_is_sent_once_on_a_fresh_one(string kind, bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1, maxBatchSize: 16));
        (await sender.SendAsync(PoolTestMessages.Create("warm", 0).Message).WaitAsync(Limit)).IsAccepted.Should().BeTrue();
        proxy.DropNext(DropPoint.BeforeNthMail, 2);

        var first = PoolTestMessages.Create("retry-kinds-first", 0);
        var id = $"<retry-kinds-{kind}-{Guid.NewGuid():N}@pool.test>";
        var bytes = Encoding.ASCII.GetBytes($"Subject: {kind}\r\nMessage-Id: {id}\r\n\r\n{new string('x', 70)}\r\n");
        var envelope = new SmtpEnvelope("sender@example.test", "rcpt-retry-kinds@example.test");
        var second = kind switch
        {
            "one-pass-stream" => SmtpMessage.FromStream(envelope, new OnePass(bytes)),
            "writer" => SmtpMessage.FromWriter(envelope, async (stream, ct) => await stream.WriteAsync(bytes, ct)),
            "pipe-reader" => SmtpMessage.FromPipeReader(envelope, PipeReader.Create(new OnePass(bytes))),
            _ => SmtpMessage.FromStream(envelope, new MemoryStream(bytes)),
        };
        var third = PoolTestMessages.Create("retry-kinds-third", 0);

        var results = await sender.SendBatchAsync([first.Message, second, third.Message]).WaitAsync(Limit);

        var copies = server.CountOf(id);
        var truth = $"{results[1]} (attempts {results[1].Attempts}); server copies {copies}; {sender.GetStatistics()}";
        server.CountOf(first.MessageId).Should().Be(results[0].Outcome switch { SmtpSendOutcome.Accepted => 1, SmtpSendOutcome.Unknown => server.CountOf(first.MessageId), _ => 0 }, results[0].ToString());
        server.CountOf(first.MessageId).Should().BeLessThanOrEqualTo(1);
        // With BDAT the third message's end of data may have been written before the loss was seen: Unknown then.
        results[2].Outcome.Should().BeOneOf([SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown], results[2].ToString());
        server.CountOf(third.MessageId).Should().Be(results[2].IsAccepted ? 1 : server.CountOf(third.MessageId)).And.BeLessThanOrEqualTo(1);
        switch (results[1].Outcome)
        {
            case SmtpSendOutcome.Accepted:
                copies.Should().Be(1, truth);
                results[1].Attempts.Should().Be(2, truth);
                server.Received.Single(m => m.MessageId == id).Data.Should().Equal(bytes, truth);
                break;
            case SmtpSendOutcome.Unknown:
                // With BDAT its whole transaction, end of data included, can be written before the loss is seen.
                chunking.Should().BeTrue(truth);
                copies.Should().BeLessThanOrEqualTo(1, truth);
                break;
            default:
                copies.Should().Be(0, truth);
                results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, truth);
                results[1].IsTransientFailure.Should().BeTrue("the connection was lost before the message's MAIL: " + truth);
                break;
        }

        if (!chunking)
        {
            // With DATA nothing of it was read before the connection was lost: any content goes to a fresh connection whole.
            results[1].IsAccepted.Should().BeTrue(truth);
        }
    }

    /// <summary>A read-only stream that cannot seek.</summary>
    private sealed class OnePass(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin loc) => throw new NotSupportedException();
    }
}
