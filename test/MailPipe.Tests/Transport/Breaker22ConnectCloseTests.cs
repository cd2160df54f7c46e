using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Transport;

/// <summary>
/// Breaker 22: <c>DisconnectAsync</c> or <c>Dispose</c> from another thread while <c>ConnectAsync</c> is still
/// connecting (a host that drops the SYN: here a loopback listener whose accept queue is full, which Linux answers by
/// dropping it). The close must end the connect with <see cref="SmtpErrorCode.ConnectionClosed"/> (or
/// <see cref="ObjectDisposedException"/> semantics for Dispose) instead of being lost: before, the connect went on until
/// <see cref="SmtpSessionOptions.ConnectTimeout"/> and, had it completed, left a connected session the caller had closed.
/// </summary>
public sealed class Breaker22ConnectCloseTests : IDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly List<Socket> _fillers = [];

    [Fact]
    public async Task DisconnectAsync_during_a_TCP_connect_ends_it_with_ConnectionClosed()
    {
        var port = await FullListenerAsync();
        using var session = new AsyncSmtpSession();

        var connecting = session.ConnectAsync("127.0.0.1", port);
        connecting.IsCompleted.Should().BeFalse("the listener's queue is full: the SYN is dropped");
        await session.DisconnectAsync();

        var thrown = await FluentActions.Awaiting(() => connecting.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }

    [Fact]
    public async Task Dispose_during_a_TCP_connect_ends_it_and_leaves_nothing_connected()
    {
        var port = await FullListenerAsync();
        var session = new AsyncSmtpSession();

        var connecting = session.ConnectAsync("127.0.0.1", port);
        connecting.IsCompleted.Should().BeFalse("the listener's queue is full: the SYN is dropped");
        session.Dispose();

        await FluentActions.Awaiting(() => connecting.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3)).Should().ThrowAsync<Exception>()
            .Where(e => e is SmtpException || e is ObjectDisposedException, "the session was closed under the connect");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task DisconnectAsync_before_a_connect_does_not_stop_the_next_one()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 ready", "C: QUIT", "S: 221 bye");
        using var session = new AsyncSmtpSession();

        await session.DisconnectAsync();
        (await session.ConnectAsync(server.ClientStream).Safe())!.Code.Should().Be(220);
        (await session.QuitAsync().Safe()).Code.Should().Be(221);
        await server.WaitAsync();
    }

    public void Dispose()
    {
        foreach (var filler in _fillers)
        {
            filler.Dispose();
        }

        _listener.Dispose();
    }

    /// <summary>A listener nobody accepts on, its queue (backlog 0: one connection on Linux) filled: the next SYN is dropped.</summary>
    private async Task<int> FullListenerAsync()
    {
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(0);
        var endPoint = (IPEndPoint)_listener.LocalEndPoint!;
        for (var i = 0; i < 2; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            _fillers.Add(filler);
            if (i == 0)
            {
                await filler.ConnectAsync(endPoint).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            }
            else
            {
                // The second one waits too (its SYN dropped), which makes sure the queue is full before the session connects.
                _ = filler.ConnectAsync(endPoint).ContinueWith(static t => t.Exception, TaskScheduler.Default);
            }
        }

        return endPoint.Port;
    }
}
