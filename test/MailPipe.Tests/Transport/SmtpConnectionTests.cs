using System.Net;
using MailPipe.Tests.Support;
using MailPipe.Transport;

namespace MailPipe.Tests.Transport;

/// <summary>The transport connection: what it knows of the socket stays known after the peer resets it.</summary>
public class SmtpConnectionTests
{
    private static readonly TimeSpan NoHang = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task The_end_points_are_known_after_the_peer_reset_the_connection()
    {
        // Before: Socket.RemoteEndPoint was read when the session attached the connection, and after a reset by the
        // peer it throws SocketException (ENOTCONN) — an untyped error out of ConnectAsync (seen in HostileServerTests).
        var connected = new TaskCompletionSource();
        await using var server = LoopbackServer.Start(async (_, socket, _) =>
        {
            await connected.Task;
            LoopbackServer.Reset(socket);
        });
        await using var connection = await SmtpConnection.ConnectAsync("127.0.0.1", server.Port, CancellationToken.None).WaitAsync(NoHang);
        connected.SetResult();
        await server.Completion.WaitAsync(NoHang);
        for (var i = 0; i < 200 && !connection.HasUnsolicitedInput(); i++)
        {
            await Task.Delay(10); // until the reset has arrived (the socket polls readable)
        }

        var remote = connection.RemoteEndPoint.Should().BeOfType<IPEndPoint>().Which;
        remote.Port.Should().Be(server.Port);
        remote.Address.MapToIPv4().Should().Be(IPAddress.Loopback);
        connection.LocalEndPoint.Should().BeOfType<IPEndPoint>().Which.Address.MapToIPv4().Should().Be(IPAddress.Loopback);
    }

    [Fact]
    public async Task A_session_over_a_connection_reset_at_once_fails_with_a_typed_error()
    {
        await using var server = LoopbackServer.Start((_, socket, _) =>
        {
            LoopbackServer.Reset(socket);
            return Task.CompletedTask;
        });
        using var session = new AsyncSmtpSession();

        var connect = () => session.ConnectAsync("127.0.0.1", server.Port).WaitAsync(NoHang);

        (await connect.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }
}
