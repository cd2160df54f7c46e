using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A message made from a non-seekable stream, through the pool: the pool reads it through a counting wrapper of its
/// own. It made a new message for that wrapper, which forgot that the stream had been read and the message's own
/// token (<see cref="SmtpMessage.WithCancellation"/>). Breaker10.
/// </summary>
public sealed class SmtpSenderOnePassStreamBreakTests
{
    [Fact]
    public async Task A_one_pass_stream_message_sent_again_is_NotSent_not_an_empty_message_Accepted()
    {
        // Before: the second send read the exhausted stream, the server stored an empty message and the result said Accepted.
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var (message, id) = OnePass("again");

        var first = await sender.SendAsync(message);
        var second = await sender.SendAsync(message);

        first.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        second.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        server.CountOf(id).Should().Be(1);
        server.Received.Should().HaveCount(1, "no empty message was delivered");
    }

    [Fact]
    public async Task A_one_pass_stream_message_twice_in_one_batch_is_sent_once()
    {
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var (message, id) = OnePass("batch");

        var results = await sender.SendBatchAsync([message, message]);

        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted);
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[1].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        server.CountOf(id).Should().Be(1);
        server.Received.Should().HaveCount(1, "no empty message was delivered");
    }

    [Fact]
    public async Task A_one_pass_stream_message_keeps_its_own_cancellation_token_in_the_pool()
    {
        // Before: the pool's copy dropped the token of WithCancellation, and the cancelled message was sent and Accepted.
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var (message, _) = OnePass("cancelled");

        var result = await sender.SendAsync(message.WithCancellation(new CancellationToken(canceled: true)));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<OperationCanceledException>();
        server.Received.Should().BeEmpty();
    }

    [Fact]
    public async Task A_seekable_stream_disposed_before_the_send_is_NotSent_ContentReadFailed()
    {
        // A disposed MemoryStream says CanSeek false: the pool takes it for a one-pass stream, and must not fail on that.
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var stream = new MemoryStream(Encoding.ASCII.GetBytes("Subject: disposed\r\n\r\nbody\r\n"));
        var message = SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", "rcpt@example.test"), stream);
        await stream.DisposeAsync();

        var result = await sender.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        server.Received.Should().BeEmpty();
    }

    private static (SmtpMessage Message, string MessageId) OnePass(string tag)
    {
        var id = $"<{tag}-{Guid.NewGuid():N}@pool.test>";
        var content = Encoding.ASCII.GetBytes($"From: sender@example.test\r\nTo: rcpt@example.test\r\nSubject: {tag}\r\nMessage-Id: {id}\r\n\r\nbody\r\n");
        var envelope = new SmtpEnvelope("sender@example.test", $"rcpt-{tag}@example.test");
        return (SmtpMessage.FromStream(envelope, new NonSeekableStream(new MemoryStream(content))), id);
    }

    private sealed class NonSeekableStream(Stream inner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
