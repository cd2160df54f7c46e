using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A new user's probe: a non-seekable stream (unknown length, so no SIZE check before MAIL) larger than the server's
/// SIZE. It was sent whole; Exim 2526 answered a 12 MiB stream by resetting the connection during the BDAT chunks, and
/// the result was Unknown ("may have been delivered") for a message the server could only refuse. RFC 1870 §4: a client
/// does not send a message larger than the server's SIZE. The content is now stopped before its end, as soon as it is
/// longer than SIZE: NotSent with <see cref="SmtpErrorCode.MessageTooLarge"/>, never the end of data.
/// </summary>
public class StreamedContentOverSizeLimitTests
{
    [Fact]
    public async Task With_BDAT_the_transaction_is_reset_before_any_chunk_and_the_connection_is_kept()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING", "SIZE 100"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: RSET", "S: 250 ok", "S: 250 ok", "S: 250 ok", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("m1@example.test"), new OneWayStream(Text(300))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_DATA_the_connection_is_closed_without_the_final_dot()
    {
        var script = Script(Ehlo("SIZE 100"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<m1@example.test>", "S: 250 ok", "C: DATA", "S: 354 go").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("m1@example.test"), new OneWayStream(Text(300))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Content_within_the_limit_goes_as_before()
    {
        var content = Content(1);
        var script = Script(Ehlo("PIPELINING", "CHUNKING", $"SIZE {content.Length}"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>")
            .ExpectRaw($"BDAT {content.Length} LAST\r\n{content}").Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("m1@example.test"), new OneWayStream(Encoding.ASCII.GetBytes(content))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    private static byte[] Text(int length) => Encoding.ASCII.GetBytes("Subject: big\r\n\r\n" + new string('x', length - 18) + "\r\n");

    /// <summary>A stream that can only be read forwards, of unknown length (an HTTP request body, a pipe).</summary>
    private sealed class OneWayStream(byte[] content) : Stream
    {
        private readonly MemoryStream _inner = new(content);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, count);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            _inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
