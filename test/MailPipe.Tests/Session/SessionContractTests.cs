using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>The contracts issue #9 fixed: Dispose, the explicit recipient conversion, RSET before AUTH/STARTTLS, and what counts as a content read failure.</summary>
public class SessionContractTests
{
    [Fact]
    public async Task After_DisposeAsync_every_operation_throws_ObjectDisposedException_every_time_and_disposal_stays_callable()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse([.. Ehlo(), "C: QUIT", "S: 221 bye"]));
        var session = await ConnectedAsync(server);

        await session.DisposeAsync();

        for (var i = 0; i < 2; i++)
        {
            await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<ObjectDisposedException>();
            await FluentActions.Awaiting(() => session.ConnectAsync(new MemoryStream()).Safe()).Should().ThrowAsync<ObjectDisposedException>();
            await FluentActions.Awaiting(() => session.SendAsync(Message(1)).Safe()).Should().ThrowAsync<ObjectDisposedException>();
        }

        await session.DisposeAsync();
        session.Dispose();
        await session.DisconnectAsync();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.IsConnected.Should().BeFalse();
        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
        session.Greeting.Should().BeNull();
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task After_Dispose_every_operation_throws_ObjectDisposedException_and_nothing_more_is_written()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(Ehlo()).ExpectClosed());
        var session = await ConnectedAsync(server);

        session.Dispose();

        for (var i = 0; i < 2; i++)
        {
            await FluentActions.Awaiting(() => session.EhloAsync("client.example.test").Safe()).Should().ThrowAsync<ObjectDisposedException>();
            await FluentActions.Awaiting(async () => await session.SendBatchStreamingAsync([Message(1)]).ToListAsync()).Should().ThrowAsync<ObjectDisposedException>();
        }

        await session.DisposeAsync();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public void The_conversion_from_string_to_SmtpRecipient_is_explicit_because_it_can_throw()
    {
        typeof(SmtpRecipient).GetMethod("op_Implicit", [typeof(string)]).Should().BeNull();
        typeof(SmtpRecipient).GetMethod("op_Explicit", [typeof(string)]).Should().NotBeNull();
        ((SmtpRecipient)"one@example.test").Address.Should().Be("one@example.test");
        FluentActions.Invoking(() => (SmtpRecipient)"bad\r\nRCPT").Should().Throw<ArgumentException>();
    }

    /// <summary>The greeting, EHLO with PIPELINING and AUTH, and a send whose only recipient is refused: the server keeps the transaction MAIL opened.</summary>
    private static SmtpScript RefusedSend() =>
        Script(Ehlo("PIPELINING", "AUTH PLAIN", "STARTTLS"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA")
            .Then("S: 250 2.1.0 ok", "S: 554 5.7.1 <one@example.test>: Relay access denied", "S: 554 5.5.1 Error: no valid recipients");

    [Fact]
    public async Task AUTH_after_a_send_that_left_a_transaction_open_is_preceded_by_RSET()
    {
        var script = RefusedSend().Then("C> RSET", "S: 250 2.0.0 Ok", "C> AUTH PLAIN AHVzZXIAcGFzcw==", "S: 235 2.7.0 Authentication successful");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.AuthPlainAsync("user", "pass").Safe()).Code.Should().Be(235);
        await server.WaitAsync();
    }

    [Fact]
    public async Task STARTTLS_after_a_send_that_left_a_transaction_open_is_preceded_by_RSET()
    {
        var script = RefusedSend().Then("C> RSET", "S: 250 2.0.0 Ok", "C> STARTTLS", "S: 454 4.7.0 TLS not available now");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.StartTlsAsync(new SmtpTlsOptions { TargetHost = "mail.example.test" }).Safe()).Code.Should().Be(454);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_content_stream_that_throws_InvalidOperationException_with_DATA_is_a_content_read_failure()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var content = new FailingStream(Encoding.ASCII.GetBytes("Subject: x\r\n\r\npart"), new InvalidOperationException("the caller's stream is in a bad state"));

        var result = await session.SendAsync(Envelope("one@example.test"), content).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        result.Exception!.InnerException.Should().BeOfType<InvalidOperationException>();
        session.IsConnected.Should().BeFalse("the message can never be ended");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("\r\n.\r\n");
    }

    [Fact]
    public async Task An_exception_raised_in_MailPipe_code_while_sending_content_is_not_a_content_read_failure()
    {
        // The stream itself never throws; it reports more bytes than it was asked for, and MailPipe's own code fails on that.
        var script = Script(Ehlo("PIPELINING", "CHUNKING")).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var send = session.SendAsync(Envelope("one@example.test"), new OverReportingStream());

        var thrown = await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<Exception>();
        thrown.Which.Should().NotBeAssignableTo<SmtpException>();
        session.IsConnected.Should().BeFalse("the transaction was started and its state on the wire is unknown");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("RSET", "nothing may pretend the transaction was cleanly abandoned");
    }

    /// <summary>A stream whose ReadAsync claims one byte more than the buffer holds.</summary>
    private sealed class OverReportingStream : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => count + 1;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(buffer.Length + 1);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
