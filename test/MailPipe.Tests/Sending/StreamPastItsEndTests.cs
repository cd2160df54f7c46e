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

    /// <summary>
    /// A seekable stream whose <see cref="Stream.Length"/> fails (a file on a failing disk: IOException) threw that
    /// exception out of <see cref="AsyncSmtpSession.SendBatchAsync(IEnumerable{SmtpMessage}, CancellationToken)"/>,
    /// closed the connection and lost the batch's other results (the shared sender reported it as a transient
    /// ConnectionClosed). It is the caller's content failing: that message is NotSent (ContentReadFailed) before MAIL.
    /// </summary>
    [Fact]
    public async Task A_stream_whose_length_fails_is_NotSent_ContentReadFailed_and_the_batch_goes_on()
    {
        using var failing = new FileLikeStream(Encoding.ASCII.GetBytes(SmallText)) { LengthFails = true };
        var script = Script(
            Ehlo("SIZE 1000"),
            ["C: MAIL FROM:<sender@example.test> SIZE=21", "S: 250 ok", "C: RCPT TO:<two@example.test>", "S: 250 ok", "C: DATA", "S: 354 go", .. DataLines(SmallText), "S: 250 queued"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UseChunking = false });

        var results = await session.SendBatchAsync([SmtpMessage.FromStream(Envelope("one@example.test"), failing), SmtpMessage.FromBytes(Envelope("two@example.test"), Encoding.ASCII.GetBytes(SmallText))]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[0].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        results[0].Exception!.InnerException.Should().BeOfType<IOException>();
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].ToString());
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    /// <summary>A seekable stream that is not a <see cref="MemoryStream"/> (its length is taken as it is, as a file's).</summary>
    private sealed class FileLikeStream(byte[] content) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => true;

        public override bool CanWrite => false;

        public bool LengthFails { get; init; }

        public override long Length => LengthFails ? throw new IOException("The disk failed.") : content.Length;

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
