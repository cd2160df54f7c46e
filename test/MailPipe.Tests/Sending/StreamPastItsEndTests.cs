using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A seekable stream positioned past its end when the message is made holds no content (a read there returns 0 bytes).
/// Its <see cref="SmtpMessage.ContentLength"/> was its length minus the position, negative, and went out as
/// <c>SIZE=-79</c>: Postfix answered <c>501 5.5.4 Bad message size syntax</c> and the send was reported as Refused by
/// the server (a MemoryStream in the same place was sent as the empty message it is).
/// </summary>
public class StreamPastItsEndTests
{
    [Fact]
    public async Task A_stream_positioned_past_its_end_declares_SIZE_0_never_a_negative_size()
    {
        using var stream = new FileLikeStream(Encoding.ASCII.GetBytes(SmallText)) { Position = 100 };
        var message = SmtpMessage.FromStream(Envelope("one@example.test"), stream);
        message.ContentLength.Should().Be(0);

        var script = Script(Ehlo("SIZE 1000"), "C: MAIL FROM:<sender@example.test> SIZE=0", "S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 550 5.1.1 no such user")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var session = await ConnectedAsync(server, new SmtpSessionOptions { UseChunking = false });

        var result = await session.SendAsync(message).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Recipients[0].Reply!.Code.Should().Be(550, "the server saw a valid MAIL");
        await session.DisposeAsync();
        await server.WaitAsync();
    }

    /// <summary>A seekable stream that is not a <see cref="MemoryStream"/> (its length is taken as it is, as a file's).</summary>
    private sealed class FileLikeStream(byte[] content) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public override long Length => content.Length;

        public override long Position { get; set; }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Clamp(content.Length - Position, 0, count);
            if (n > 0)
            {
                content.AsSpan((int)Position, n).CopyTo(buffer.AsSpan(offset));
                Position += n;
            }

            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => Position = origin == SeekOrigin.Begin ? offset : Position + offset;

        public override void Flush()
        {
        }

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
