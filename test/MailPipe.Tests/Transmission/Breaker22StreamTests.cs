using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Transmission;

/// <summary>
/// Breaker 22: streams given to <c>ConnectAsync(Stream)</c> that behave legally but unusually (see
/// <see cref="Breaker22OddStream"/>), and MailPipe's own close meeting them. Every outcome must be a typed error or a
/// truthful result, never a hang or the stream's own exception type.
/// </summary>
public class Breaker22StreamTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Replies_read_one_byte_at_a_time_give_the_same_result(bool chunking)
    {
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 2.1.5 ok", "S: 250 2.0.0 queued as X1", "C: QUIT", "S: 221 bye")
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 2.1.5 ok", "S: 354 go")
                .Then(DataLines(SmallText))
                .Then("S: 250 2.0.0 queued as X1", "C: QUIT", "S: 221 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { ReadLimit = 1 });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.FinalReply!.Text.Should().Contain("queued as X1");
        (await session.QuitAsync().Safe()).Code.Should().Be(221);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_multiline_reply_cut_by_the_end_of_the_stream_is_a_protocol_error()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test", "CLOSE");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(new Breaker22OddStream(server.ClientStream) { ReadLimit = 3 }).Safe();

        var thrown = await FluentActions.Awaiting(() => session.EhloAsync("client.example.test").Safe()).Should().ThrowAsync<SmtpException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(false, false)]
    public async Task A_stream_that_cannot_read_or_write_is_refused_and_left_alone(bool canRead, bool canWrite)
    {
        using var session = new AsyncSmtpSession();
        var stream = new OneWayStream(canRead, canWrite);

        var thrown = await FluentActions.Awaiting(() => session.ConnectAsync(stream).Safe()).Should().ThrowAsync<ArgumentException>();

        thrown.Which.ParamName.Should().Be("stream");
        stream.Disposed.Should().BeFalse("a stream refused is not taken");
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }

    [Theory]
    [InlineData("DisconnectAsync")]
    [InlineData("Dispose")]
    [InlineData("DisposeAsync")]
    public async Task A_stream_whose_dispose_throws_does_not_make_closing_the_session_throw(string close)
    {
        var script = close == "DisposeAsync" ? Script(Ehlo("PIPELINING"), "C: QUIT", "S: 221 bye").ReadUntilClosed() : Script(Ehlo("PIPELINING")).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var stream = new Breaker22OddStream(server.ClientStream) { DisposeFailure = new IOException("Breaker22: the tunnel failed to close.") };
        var session = await ConnectedAsync(stream);

        Func<Task> closing = close switch
        {
            "DisconnectAsync" => () => session.DisconnectAsync().AsTask(),
            "Dispose" => () =>
            {
                session.Dispose();
                return Task.CompletedTask;
            },
            _ => () => session.DisposeAsync().AsTask(),
        };

        await FluentActions.Awaiting(() => closing().Safe()).Should().NotThrowAsync();
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        stream.DisposeCalls.Should().Be(1);
        FluentActions.Invoking(session.Dispose).Should().NotThrow();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_stream_whose_dispose_throws_does_not_hide_why_a_command_failed()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP", "CLOSE"));
        await using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { DisposeFailure = new InvalidOperationException("Breaker22: the tunnel failed to close.") });

        var thrown = await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<SmtpException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_whose_dispose_throws_still_gives_a_send_its_result(bool chunking)
    {
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>").ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious).Then("S: 250 ok", "CLOSE")
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { DisposeFailure = new IOException("Breaker22: the tunnel failed to close.") });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(chunking ? SmtpSendOutcome.Unknown : SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, result.Exception?.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_write_failing_with_an_arbitrary_exception_before_the_end_of_data_is_NotSent(bool chunking)
    {
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok").ReadUntilClosed()
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { FailWriteContaining = "BOOM" });
        var content = "Subject: big\r\n\r\nBOOM\r\n" + Lines(1024, 1024);

        var result = await session.SendAsync(SmtpMessage.FromStream(Envelope("one@example.test"), new MemoryStream(Encoding.ASCII.GetBytes(content)))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        var failure = result.Exception.Should().BeOfType<SmtpException>().Which;
        failure.ErrorCode.Should().Be(SmtpErrorCode.SystemError, failure.ToString());
        failure.InnerException.Should().BeOfType<InvalidOperationException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("\r\n.\r\n").And.NotContain("LAST");
    }

    [Fact]
    public async Task A_write_failing_with_an_arbitrary_exception_in_the_flush_of_the_end_of_data_is_Unknown()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { FailWriteContaining = "BOOM" });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii("Subject: small\r\n\r\nBOOM\r\n")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, "the transport was handed the end of data: {0}", result);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.SystemError);
        result.AcceptedRecipients.Should().HaveCount(1);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_stream_that_throws_its_own_cancellation_under_a_read_is_a_closed_connection_not_the_callers_cancellation()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").Signal(reached).ReadUntilClosed());
        var stream = new Breaker22OddStream(server.ClientStream) { ReadFailure = static () => new OperationCanceledException("Breaker22: the tunnel's own connection was torn down.") };
        using var session = await ConnectedAsync(stream);
        using var cts = new CancellationTokenSource();

        var noop = session.NoopAsync(cts.Token);
        await reached.Task.Safe();
        stream.FailReads();

        var thrown = await FluentActions.Awaiting(() => noop.Safe()).Should().ThrowAsync<SmtpException>("the caller cancelled nothing");
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_that_throws_its_own_cancellation_while_the_final_reply_is_awaited_gives_Unknown(bool chunking)
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(FinalReplyNeverSent(chunking, reached));
        var stream = new Breaker22OddStream(server.ClientStream) { ReadFailure = static () => new OperationCanceledException("Breaker22: the tunnel's own connection was torn down.") };
        using var session = await ConnectedAsync(stream);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await reached.Task.Safe();
        await WaitUntilOnlyTheFinalReplyIsDueAsync(session);

        stream.FailReads();
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, result.Exception?.ToString());
        result.AcceptedRecipients.Should().HaveCount(1);
    }

    [Fact]
    public async Task A_stream_that_does_nothing_on_flush_still_sends()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok", "C: QUIT", "S: 221 bye"));
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { FlushMode = Breaker22FlushMode.Nothing });

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        (await session.QuitAsync().Safe()).Code.Should().Be(221);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_stream_whose_flush_throws_NotSupportedException_fails_with_a_typed_error()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: EHLO client.example.test", "EXPECT CLOSE");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(new Breaker22OddStream(server.ClientStream) { FlushMode = Breaker22FlushMode.Throws }).Safe();

        var thrown = await FluentActions.Awaiting(() => session.EhloAsync("client.example.test").Safe()).Should().ThrowAsync<SmtpException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.SystemError, thrown.Which.ToString());
        thrown.Which.InnerException.Should().BeOfType<NotSupportedException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    private static async Task<AsyncSmtpSession> ConnectedAsync(Stream stream, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(stream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        return session;
    }

    /// <summary>A stream that can only read, only write, or neither.</summary>
    private sealed class OneWayStream(bool canRead, bool canWrite) : Stream
    {
        public bool Disposed { get; private set; }

        public override bool CanRead => canRead;

        public override bool CanWrite => canWrite;

        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => canRead ? 0 : throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!canWrite)
            {
                throw new NotSupportedException();
            }
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}
