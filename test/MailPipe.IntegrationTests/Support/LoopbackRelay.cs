using System.Net;
using System.Net.Sockets;

namespace MailPipe.IntegrationTests.Support;

/// <summary>
/// A transparent loopback TCP relay in front of a real server: every byte passes both ways unchanged, and each end of
/// the stream is passed on. It tells when the server has closed the connections (Postfix's idle 421 and close), so a
/// test waits for that event instead of sleeping past the server's timer, which a loaded machine may run late.
/// </summary>
public sealed class LoopbackRelay : IAsyncDisposable
{
    // Linux TCP_INFO (getsockopt(IPPROTO_TCP, TCP_INFO)); its first byte is the socket's state.
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const byte TcpFinWait2 = 5;
    private const byte TcpTimeWait = 6;
    private const byte TcpClose = 7;

    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _relays = [];
    private readonly Task _accepting;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _accepted;
    private int _closedByServer;

    public LoopbackRelay(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _accepting = AcceptAsync();
    }

    /// <summary>The port clients connect to (127.0.0.1).</summary>
    public int Port { get; }

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>
    /// Connections the server has closed and whose last bytes and end of the stream the client's side has acknowledged:
    /// from then on the client's socket holds them (readable) whatever the scheduler does.
    /// </summary>
    public int ClosedByServer => Volatile.Read(ref _closedByServer);

    /// <summary>Waits until the server has closed every connection relayed so far (at least one), as <see cref="ClosedByServer"/> counts.</summary>
    /// <exception cref="TimeoutException">Not within <paramref name="timeout"/>.</exception>
    public async Task WaitUntilServerClosedAllAsync(TimeSpan timeout)
    {
        using var limit = new CancellationTokenSource(timeout);
        while (true)
        {
            Task changed;
            lock (_relays)
            {
                changed = _changed.Task;
            }

            if (Accepted > 0 && ClosedByServer == Accepted)
            {
                return;
            }

            try
            {
                await changed.WaitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"The server closed {ClosedByServer} of {Accepted} relayed connection(s) within {timeout.TotalSeconds} s.");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Dispose();
        await _accepting;
        Task[] relays;
        lock (_relays)
        {
            relays = [.. _relays];
        }

        await Task.WhenAll(relays);
        _stop.Dispose();
    }

    private void Signal(ref int counter)
    {
        Interlocked.Increment(ref counter);
        TaskCompletionSource changed;
        lock (_relays)
        {
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (_relays)
            {
                _relays.Add(RelayAsync(client));
            }

            Signal(ref _accepted);
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using var clientSocket = client;
        using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        try
        {
            await server.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _targetPort), _stop.Token);
            var up = PumpAsync(client, server, _stop.Token);
            var down = PumpDownAsync(server, client, _stop.Token);
            await Task.WhenAll(up, down);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // Stopped, or the target is gone: the sockets are closed.
        }
    }

    /// <summary>Server to client; at the server's end of the stream, passes it on and counts it once the client's side acknowledged it.</summary>
    private async Task PumpDownAsync(Socket server, Socket client, CancellationToken cancellationToken)
    {
        await PumpAsync(server, client, cancellationToken);

        // The client's kernel acknowledges the end of the stream after every byte before it: then the socket holds them.
        var info = new byte[8];
        while (client.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) > 0 && info[0] is not (TcpFinWait2 or TcpTimeWait or TcpClose))
        {
            await Task.Delay(5, cancellationToken);
        }

        Signal(ref _closedByServer);
    }

    /// <summary>Copies until the end of <paramref name="from"/>'s stream (or its reset), then ends <paramref name="to"/>'s sending side.</summary>
    private static async Task PumpAsync(Socket from, Socket to, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        var forwarding = true;
        while (true)
        {
            int read;
            try
            {
                read = await from.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            }
            catch (SocketException)
            {
                read = 0;
            }

            if (read == 0)
            {
                try
                {
                    to.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException)
                {
                    // The other side is gone already.
                }

                return;
            }

            if (forwarding)
            {
                try
                {
                    for (var sent = 0; sent < read;)
                    {
                        sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, cancellationToken);
                    }
                }
                catch (SocketException)
                {
                    // The other side is gone: read on until this side ends too, as a direct peer would go on sending into nothing.
                    forwarding = false;
                }
            }
        }
    }
}
