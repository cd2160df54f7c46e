using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;

namespace MailPipe.EndToEnd;

/// <summary>
/// A loopback TCP proxy that emulates a link with a round-trip time: client-to-server bytes are forwarded at once,
/// and each server-to-client chunk is held for the delay, in order. (This kernel has no <c>netem</c> qdisc.)
/// Every wait for a server reply then costs one delay, so elapsed time / delay counts the round trips.
/// </summary>
/// <remarks>The proxy runs in the harness's process: in this mode the allocation and CPU figures include it and are not reported.</remarks>
internal sealed class DelayProxy : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint _upstream;
    private long _delayTicks;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _acceptLoop;
    private long _chunks;
    private long _lateTicks;
    private long _connections;

    public DelayProxy(int upstreamPort, TimeSpan delay)
    {
        _upstream = new IPEndPoint(IPAddress.Loopback, upstreamPort);
        Delay = delay;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(128);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port { get; }

    /// <summary>
    /// The hold of server-to-client chunks; changeable between runs. A run at zero hold measures what the relay itself,
    /// the client and the server cost per message, which the harness subtracts to count the delays a client pays.
    /// </summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _delayTicks));
        set => Interlocked.Exchange(ref _delayTicks, value.Ticks);
    }

    /// <summary>How late, on average, a held chunk was sent after its due time (timer precision, scheduling under load).</summary>
    public TimeSpan MeanLateness => Snapshot().MeanLatenessSince(default);

    /// <summary>The counters now, to compute the lateness of one run.</summary>
    public ProxyCounters Snapshot() => new(Interlocked.Read(ref _chunks), Interlocked.Read(ref _lateTicks), Interlocked.Read(ref _connections));

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => RelayAsync(client));
        }
    }

    private async Task RelayAsync(Socket client)
    {
        using (client)
        using (var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            client.NoDelay = true;
            server.NoDelay = true;
            try
            {
                await server.ConnectAsync(_upstream, _stop.Token).ConfigureAwait(false);
                var toServer = PumpAsync(client, server);
                var toClient = DelayedPumpAsync(server, client);
                await Task.WhenAny(toServer, toClient).ConfigureAwait(false);
                client.Shutdown(SocketShutdown.Both);
                server.Shutdown(SocketShutdown.Both);
                await Task.WhenAll(toServer, toClient).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or ChannelClosedException)
            {
                // The connection ended.
            }
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            if (read == 0)
            {
                to.Shutdown(SocketShutdown.Send);
                return;
            }

            await SendAllAsync(to, buffer.AsMemory(0, read)).ConfigureAwait(false);
        }
    }

    /// <summary>Reads server chunks as they come; a second task sends each one when its time is due.</summary>
    private async Task DelayedPumpAsync(Socket from, Socket to)
    {
        var queue = Channel.CreateUnbounded<(long Due, byte[] Data)>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var sender = SendDueAsync(queue.Reader, to);
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                var due = Stopwatch.GetTimestamp() + (long)(Delay.TotalSeconds * Stopwatch.Frequency);
                queue.Writer.TryWrite((due, buffer.AsSpan(0, read).ToArray()));
            }
        }
        finally
        {
            queue.Writer.TryComplete();
        }

        await sender.ConfigureAwait(false);
        to.Shutdown(SocketShutdown.Send);
    }

    private async Task SendDueAsync(ChannelReader<(long Due, byte[] Data)> queue, Socket to)
    {
        await foreach (var (due, data) in queue.ReadAllAsync(_stop.Token).ConfigureAwait(false))
        {
            // Sleep most of the wait, then spin the last stretch: timers are only ~1 ms precise.
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (remaining > TimeSpan.FromMilliseconds(2))
            {
                await Task.Delay(remaining - TimeSpan.FromMilliseconds(1.5), _stop.Token).ConfigureAwait(false);
            }

            while (Stopwatch.GetTimestamp() < due)
            {
                Thread.SpinWait(50);
            }

            Interlocked.Add(ref _lateTicks, Stopwatch.GetElapsedTime(due).Ticks);
            Interlocked.Increment(ref _chunks);
            await SendAllAsync(to, data).ConfigureAwait(false);
        }
    }

    private async Task SendAllAsync(Socket to, ReadOnlyMemory<byte> data)
    {
        while (!data.IsEmpty)
        {
            var sent = await to.SendAsync(data, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            data = data[sent..];
        }
    }
}

/// <summary>Chunks held, their total lateness and the connections accepted, at one moment.</summary>
internal readonly record struct ProxyCounters(long Chunks, long LateTicks, long Connections)
{
    /// <summary>Mean lateness of the chunks sent between <paramref name="earlier"/> and this snapshot.</summary>
    public TimeSpan MeanLatenessSince(ProxyCounters earlier)
    {
        var chunks = Chunks - earlier.Chunks;
        return chunks == 0 ? TimeSpan.Zero : TimeSpan.FromTicks((LateTicks - earlier.LateTicks) / chunks);
    }
}
