using System.Net;
using System.Net.Sockets;

namespace MailPipe.Tests.Session;

/// <summary>
/// A refused connect said it twice: "Connection refused while connecting to 127.0.0.1:2599: Connection refused" (the
/// code's words, then the socket's message, which on Linux is the same two words). The OS's text follows only when it
/// says something else.
/// </summary>
public class ConnectRefusedMessageTests
{
    [Fact]
    public async Task A_refused_connect_says_connection_refused_once()
    {
        // A port that was free a moment ago and that nothing listens on now.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ConnectTimeout = TimeSpan.FromSeconds(10) });

        var thrown = (await FluentActions.Awaiting(() => session.ConnectAsync("127.0.0.1", port)).Should().ThrowAsync<SmtpException>()).Which;

        thrown.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        thrown.Message.Should().Be($"Connection refused while connecting to 127.0.0.1:{port}.");
        thrown.InnerException.Should().BeOfType<SocketException>();
    }
}
