using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Transmission;

/// <summary>
/// Every reply is checked against the command it is matched to (RFC 5321 §4.3.2), and a reply nobody asked for is
/// never taken for the next command's: the three out-of-order cases of issue #9 and the unsolicited replies.
/// </summary>
public class ReplyMatchingTests
{
    [Fact]
    public async Task A_354_followed_at_once_by_250_before_any_data_is_a_protocol_error_and_the_data_is_never_sent()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA")
            .SendRaw("250 ok\r\n250 ok\r\n354 go\r\n250 2.0.0 queued\r\n")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "the server never got the end of data");
        result.Exception.Should().BeOfType<SmtpProtocolException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ReceivedText.Should().EndWith("DATA\r\n", "no byte of the content, and no dot, follows");
    }

    [Fact]
    public async Task A_dropped_RCPT_reply_in_a_pipelined_group_is_a_protocol_error_and_nothing_is_reported_sent()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<a@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA")
            .SendRaw("250 ok\r\n250 a ok\r\n354 go\r\n")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("a@example.test", "b@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpProtocolException>().Which.Message.Should().Contain("RCPT TO").And.Contain("354");
        result.Recipients[1].Reply.Should().BeNull("the 354 is never filed as the reply to RCPT");
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ReceivedText.Should().EndWith("DATA\r\n");
    }

    [Fact]
    public async Task Two_replies_to_one_RCPT_with_BDAT_are_a_protocol_error_and_the_message_is_Unknown_never_Refused()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .SendRaw("250 ok\r\n550 5.1.1 no\r\n250 2.1.5 ok after all\r\n250 2.0.0 queued\r\n")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, "the server may have accepted the message: a retry could duplicate it");
        result.FinalReply.Should().BeNull();
        result.Exception.Should().BeOfType<SmtpProtocolException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_354_to_RCPT_issued_one_command_at_a_time_is_a_protocol_error()
    {
        var script = Script(Ehlo(), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 354 go").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.MailFromAsync(Sender).Safe()).Should().NotThrowAsync();
        var thrown = await FluentActions.Awaiting(() => session.RcptToAsync("one@example.test").Safe()).Should().ThrowAsync<SmtpProtocolException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    private static async Task<AsyncSmtpSession> LoopbackSessionAsync(LoopbackPeer peer)
    {
        var session = new AsyncSmtpSession();
        var connect = session.ConnectAsync("127.0.0.1", peer.Port);
        await peer.AcceptAsync();
        await connect.Safe();
        var ehlo = session.EhloAsync("client.example.test");
        await peer.WaitForAsync("EHLO client.example.test\r\n");
        await peer.SendAsync("250-loopback.test", "250-PIPELINING", "250 CHUNKING");
        (await ehlo.Safe()).Code.Should().Be(250);
        return session;
    }

    [Fact]
    public async Task A_stale_221_over_a_real_socket_fails_the_next_send_with_ServiceNotAvailable_and_MAIL_is_never_written()
    {
        await using var peer = new LoopbackPeer();
        using var session = await LoopbackSessionAsync(peer);

        await peer.SendAsync("221 2.0.0 loopback.test closing");
        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.IsTransient.Should().BeTrue();
        error.Reply!.Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
        await peer.WaitForCloseAsync();
        peer.ReceivedText.Should().Be("EHLO client.example.test\r\n", "MAIL was not written");
    }

    [Fact]
    public async Task QUIT_after_an_unsolicited_421_returns_that_reply_instead_of_throwing_and_closes()
    {
        await using var peer = new LoopbackPeer();
        using var session = await LoopbackSessionAsync(peer);

        await peer.SendAsync("421 4.4.2 loopback.test Error: timeout exceeded");
        var reply = await session.QuitAsync().Safe();

        reply.Code.Should().Be(421, "the server had already closed the channel: QUIT's purpose is met");
        session.IsConnected.Should().BeFalse();
        await peer.WaitForCloseAsync();
        peer.ReceivedText.Should().Be("EHLO client.example.test\r\n", "QUIT was not written after the 421");
    }

    [Fact]
    public async Task A_stray_250_over_a_real_socket_is_a_protocol_error_and_the_next_command_is_never_written()
    {
        await using var peer = new LoopbackPeer();
        using var session = await LoopbackSessionAsync(peer);

        await peer.SendAsync("250 2.0.0 stray");
        var thrown = await FluentActions.Awaiting(() => session.MailFromAsync(Sender).Safe()).Should().ThrowAsync<SmtpProtocolException>();

        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await peer.WaitForCloseAsync();
        peer.ReceivedText.Should().Be("EHLO client.example.test\r\n", "MAIL was not written");
    }

    [Fact]
    public async Task An_extra_reply_in_a_pipelined_group_over_a_real_socket_is_a_protocol_error_and_the_outcome_is_Unknown()
    {
        await using var peer = new LoopbackPeer();
        using var session = await LoopbackSessionAsync(peer);

        var send = session.SendBatchAsync([Message(1), Message(2)]);
        await peer.WaitForAsync("BDAT 30 LAST\r\nSubject: message 2\r\n\r\nbody 2\r\n");
        await peer.SendAsync("250 ok", "250 ok", "250 queued 1", "250 extra", "250 reset", "250 ok", "250 ok", "250 queued 2");
        var results = await send.Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, "its replies were matched before anything went wrong");
        results[1].Outcome.Should().Be(SmtpSendOutcome.Unknown, "its BDAT LAST went out, and no reply can be matched any more");
        results[1].Exception.Should().BeOfType<SmtpProtocolException>();
        session.IsConnected.Should().BeFalse();
        await peer.WaitForCloseAsync();
        peer.ReceivedText.Should().NotContain("QUIT");
    }

    [Fact]
    public async Task Blank_lines_before_a_command_are_not_a_reply()
    {
        await using var peer = new LoopbackPeer();
        using var session = await LoopbackSessionAsync(peer);

        await peer.SendAsync(string.Empty);
        var noop = session.NoopAsync();
        await peer.WaitForAsync("NOOP\r\n");
        await peer.SendAsync("250 2.0.0 ok");

        (await noop.Safe()).Code.Should().Be(250);
        session.IsConnected.Should().BeTrue();
    }
}
