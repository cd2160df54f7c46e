using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>
/// A loopback TCP proxy in front of a real server (clear text only), with faults: refuse every session (or the first
/// <see cref="RefuseFirst"/>) with a greeting of its own, drop a connection when the client sends a given text, or
/// hold everything (both ways) from the moment the client sends a given text.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly Task _accepting;

    public FaultProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>When set, every session (or the first <see cref="RefuseFirst"/>) gets this line and is closed; nothing reaches the server.</summary>
    public string? RefuseWith { get; set; }

    /// <summary>How many sessions, counted from the first, <see cref="RefuseWith"/> refuses (every one by default).</summary>
    public int RefuseFirst { get; set; } = int.MaxValue;

    /// <summary>When the client sends this text, both sides of that connection are closed at once.</summary>
    public string? DropOn { get; set; }

    /// <summary>When the client sends this text, that connection is held: nothing more goes either way (the text included).</summary>
    public string? HoldOn { get; set; }

    private readonly TaskCompletionSource _firstHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _accepted;
    private int _held;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Connections held so far.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>Completes when the first connection is held.</summary>
    public Task FirstHeld => _firstHeld.Task;

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_clients)
        {
            foreach (var client in _clients)
            {
                client.Dispose();
            }
        }

        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var number = Interlocked.Increment(ref _accepted);
            lock (_clients)
            {
                _clients.Add(client);
            }

            _ = Task.Run(() => RelayAsync(client, number));
        }
    }

    private async Task RelayAsync(TcpClient client, int number)
    {
        using var _ = client;
        var downstream = client.GetStream();
        if (RefuseWith is { } refusal && number <= RefuseFirst)
        {
            try
            {
                await downstream.WriteAsync(Encoding.ASCII.GetBytes(refusal + "\r\n"), _stop.Token);
                client.Client.Shutdown(SocketShutdown.Send);

                // Read until the client closes (it may send QUIT), so that the greeting is never lost to a reset.
                var sink = new byte[512];
                while (await downstream.ReadAsync(sink, _stop.Token) > 0)
                {
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }

            return;
        }

        using var server = new TcpClient();
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException)
        {
            return;
        }

        var upstream = server.GetStream();
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var toServer = PumpAsync(downstream, upstream, inspect: true, held, connection);
        var toClient = PumpAsync(upstream, downstream, inspect: false, held, connection);
        await Task.WhenAny(toServer, toClient);
        await connection.CancelAsync();
    }

    private async Task PumpAsync(NetworkStream from, NetworkStream to, bool inspect, TaskCompletionSource held, CancellationTokenSource connection)
    {
        var buffer = new byte[16384];
        try
        {
            while (true)
            {
                var read = await from.ReadAsync(buffer, connection.Token);
                if (read == 0)
                {
                    return;
                }

                if (inspect)
                {
                    var text = Encoding.Latin1.GetString(buffer, 0, read);
                    if (DropOn is { } drop && text.Contains(drop, StringComparison.Ordinal))
                    {
                        return;
                    }

                    if (HoldOn is { } hold && text.Contains(hold, StringComparison.Ordinal))
                    {
                        Interlocked.Increment(ref _held);
                        held.TrySetResult();
                        _firstHeld.TrySetResult();
                    }
                }

                if (held.Task.IsCompleted)
                {
                    // Held: swallow everything from now on, both ways, until the client goes away.
                    continue;
                }

                await to.WriteAsync(buffer.AsMemory(0, read), connection.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }
}
