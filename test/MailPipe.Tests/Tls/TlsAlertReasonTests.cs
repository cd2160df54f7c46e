using System.Net.Sockets;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Tls;

/// <summary>
/// A server that ends the handshake with a TLS alert (OpenSMTPD 6.8 with an RSA key under OpenSSL 3 answers every
/// ClientHello with <c>internal_error</c>) was reported with .NET's outer words only: "The TLS handshake with
/// '127.0.0.1' failed: Authentication failed, see inner exception." — and the CLI, a log line or a health check shows
/// no inner exception. The reason (the alert, OpenSSL's error) is now in the message itself.
/// </summary>
public class TlsAlertReasonTests
{
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(80, "internal error")]
    [InlineData(40, "handshake failure")]
    public async Task A_TLS_alert_from_the_server_is_named_in_the_message(byte alert, string openSslWords)
    {
        await using var server = LoopbackServer.Start(async (s, socket, ct) =>
        {
            // The ClientHello's record header has arrived: answer with a fatal alert record (RFC 8446 §6).
            (await s.ReadBytesAsync(socket, 5, ct)).Should().Be(5);
            await socket.SendAsync(new byte[] { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert }, SocketFlags.None, ct);
            await s.ReadToEndAsync(socket, ct);
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = TlsTestCertificate.TrustingOptions() });

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync("127.0.0.1", server.Port, SmtpTlsMode.Implicit, "client.test"))
            .Should().ThrowAsync<SmtpException>().WaitAsync(NoHang)).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        thrown.Message.Should().StartWith("The TLS handshake with '127.0.0.1' failed: ")
            .And.NotContain("see inner exception").And.Contain(openSslWords);
        thrown.InnerException.Should().NotBeNull("the handshake's own exception stays the inner exception");
        session.IsConnected.Should().BeFalse();
    }
}
