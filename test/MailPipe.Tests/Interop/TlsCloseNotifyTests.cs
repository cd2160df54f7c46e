using System.Text;
using MailPipe.Tests.Authentication;
using MailPipe.Tests.Tls;

namespace MailPipe.Tests.Interop;

/// <summary>
/// A TLS server that sends close_notify in the middle of a session (some providers do on an idle or overlong session):
/// the client reads end of stream, the session is closed, and the result says truthfully what became of the message.
/// </summary>
public sealed class TlsCloseNotifyTests
{
    private static readonly byte[] Content = Encoding.ASCII.GetBytes("Subject: hi\r\n\r\nbody\r\n");

    private static SmtpMessage Message() => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", "a@example.test"), Content);

    private static async Task<AsyncSmtpSession> SecuredAsync(AuthScriptServer server)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = TlsTestCertificate.TrustingOptions(), ReceiveTimeout = TimeSpan.FromSeconds(15) });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        (await session.StartTlsAsync()).Code.Should().Be(220);
        await session.EhloAsync("client.test");
        return session;
    }

    private static async Task StartTlsAsync(AuthScriptConnection c)
    {
        await c.GreetAndEhloAsync("STARTTLS", "PIPELINING");
        await c.ExpectAsync("STARTTLS");
        await c.ReplyAsync("220 2.0.0 Ready to start TLS");
        await c.UpgradeAsync(TlsTestCertificate.WithKey);
        await c.ExpectAsync("EHLO ");
        await c.EhloReplyAsync("PIPELINING");
    }

    [Fact]
    public async Task A_close_notify_while_idle_makes_the_next_message_NotSent_and_closes_the_session()
    {
        var closed = new TaskCompletionSource();
        await using var server = new AuthScriptServer(async c =>
        {
            await StartTlsAsync(c);
            await c.SendCloseNotifyAsync();
            closed.SetResult();
            await c.DrainAsync();
        });
        await using var session = await SecuredAsync(server);
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var result = await session.SendAsync(Message());

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_close_notify_instead_of_the_final_reply_makes_the_outcome_Unknown()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await StartTlsAsync(c);
            await c.ExpectAsync("MAIL FROM:");
            await c.ExpectAsync("RCPT TO:");
            await c.ExpectAsync("DATA");
            await c.ReplyAsync("250 ok");
            await c.ReplyAsync("250 ok");
            await c.ReplyAsync("354 go");
            while (await c.ReadLineAsync() is { } line && line != ".")
            {
            }

            await c.SendCloseNotifyAsync();
            await c.DrainAsync();
        });
        await using var session = await SecuredAsync(server);

        var result = await session.SendAsync(Message());

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.AcceptedRecipients.Should().ContainSingle();
        session.IsConnected.Should().BeFalse();
    }
}
