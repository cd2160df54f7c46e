using MailPipe.Tests.Support;

namespace MailPipe.Tests.Tls;

/// <summary>
/// Implicit TLS (<see cref="SmtpTlsMode.Implicit"/>, <c>Smtp:TlsMode = Implicit</c>) against a port that greets in plain
/// text (Postfix's 2525, any 25 or 587) failed with .NET's words only: "The TLS handshake with '127.0.0.1' failed: Cannot
/// determine the frame size or a corrupted frame was received." — in the application's log and its health check,
/// with nothing to say that the server had answered <c>220 ...</c> in plain text, or what to use instead (the CLI added
/// a hint of its own; the library did not). A silent implicit-TLS port already got its advice the other way round.
/// </summary>
public class PlainTextInsteadOfTlsTests
{
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Implicit_TLS_against_a_port_that_greets_in_plain_text_quotes_the_greeting_and_names_StartTlsRequired()
    {
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await LoopbackServer.SendAsync(socket, "220 plain.test ESMTP ready\r\n", ct);
            await s.ReadToEndAsync(socket, ct);
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = TlsTestCertificate.TrustingOptions() });

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.Implicit, "client.test"))
            .Should().ThrowAsync<SmtpException>().WaitAsync(NoHang)).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        thrown.Message.Should().Contain("answered in plain text").And.Contain("\"220 plain.test ESMTP ready\"").And.Contain("SmtpTlsMode.StartTlsRequired");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task Plain_text_after_STARTTLS_is_quoted_without_the_advice_for_implicit_TLS()
    {
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            await LoopbackServer.SendAsync(socket, "220 odd.test ESMTP\r\n", ct);
            (await s.ReadLineAsync(socket, ct)).Should().StartWith("EHLO ");
            await LoopbackServer.SendAsync(socket, "250-odd.test\r\n250 STARTTLS\r\n", ct);
            (await s.ReadLineAsync(socket, ct)).Should().Be("STARTTLS\r\n");
            await LoopbackServer.SendAsync(socket, "220 2.0.0 go ahead\r\n", ct);

            // The client's hello has begun to arrive: the handshake runs, and gets text instead of TLS.
            (await s.ReadBytesAsync(socket, 5, ct)).Should().Be(5);
            await LoopbackServer.SendAsync(socket, "454 4.7.0 TLS not available after all\r\n", ct);
            await s.ReadToEndAsync(socket, ct);
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = TlsTestCertificate.TrustingOptions() });

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.StartTlsRequired, "client.test"))
            .Should().ThrowAsync<SmtpException>().WaitAsync(NoHang)).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        thrown.Message.Should().Contain("answered in plain text").And.Contain("\"454 4.7.0 TLS not available after all\"").And.NotContain("StartTlsRequired");
    }
}
