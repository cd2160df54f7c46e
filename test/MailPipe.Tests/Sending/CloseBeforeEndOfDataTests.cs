using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The session closed (DisconnectAsync from another thread) after a message's content was read but before its end of
/// data was written: nothing of the end can go out, so the message is NotSent, never Unknown (a flake of
/// Breaker20ProbeTests.Session_disposed_while_a_batch_is_under_way on a loaded machine).
/// </summary>
public sealed class CloseBeforeEndOfDataTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_session_closed_between_the_last_content_read_and_the_end_of_data_leaves_the_message_NotSent(bool chunking)
    {
        var ehlo = chunking ? Ehlo("PIPELINING", "CHUNKING") : Ehlo("PIPELINING");
        var script = chunking
            ? Script(ehlo, "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "EXPECT CLOSE")
            : Script(ehlo, "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go", "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var content = new ClosingAtEndStream(Encoding.ASCII.GetBytes(Content(1)), session);

        var result = await session.SendAsync(SmtpMessage.FromStream(Envelope("m1@example.test"), content)).Safe();

        content.Closed.Should().BeTrue();
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "the connection was closed before the end of data could be written: {0}", result);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
    }

    /// <summary>Gives its bytes, then, at the read that would return the end of the stream, closes the session first.</summary>
    private sealed class ClosingAtEndStream(byte[] bytes, AsyncSmtpSession session) : Stream
    {
        private int _position;

        public bool Closed { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_position == bytes.Length)
            {
                if (!Closed)
                {
                    Closed = true;
                    session.DisconnectAsync().AsTask().GetAwaiter().GetResult();
                }

                return 0;
            }

            var count = Math.Min(buffer.Length, bytes.Length - _position);
            bytes.AsSpan(_position, count).CopyTo(buffer);
            _position += count;
            return count;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult(Read(buffer.Span)); // the token is ignored on purpose: the end is returned whatever happened

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
