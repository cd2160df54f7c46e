using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

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

    /// <summary>
    /// Relays one connection on three dedicated threads with blocking calls (client to server; server to the queue;
    /// the queue to the client when due). Thread-pool continuations would add a wake-up of a sleeping worker to every
    /// chunk after each idle 10 ms, which a real link does not have and which would count against every client alike.
    /// </summary>
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
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            using var held = new BlockingCollection<(long Due, byte[] Data)>();
            var threads = new[]
            {
                StartThread(() => Forward(client, server), "proxy: to server"),
                StartThread(() => Hold(server, held), "proxy: from server"),
                StartThread(() => SendWhenDue(held, client), "proxy: to client"),
            };
            using var registration = _stop.Token.Register(() =>
            {
                Shutdown(client);
                Shutdown(server);
            });
            // Until the client stops sending, or every held chunk has reached it after the server closed (the reply
            // to QUIT among them).
            await Task.WhenAny(threads[0], threads[2]).ConfigureAwait(false);
            Shutdown(client);
            Shutdown(server);
            held.CompleteAdding();
            await Task.WhenAll(threads).ConfigureAwait(false);
        }
    }

    private static Task StartThread(Action body, string name)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                // The connection ended (or the queue was closed).
            }
            finally
            {
                done.TrySetResult();
            }
        })
        {
            IsBackground = true,
            Name = name,
        };
        thread.Start();
        return done.Task;
    }

    private static void Forward(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = from.Receive(buffer)) > 0)
        {
            SendAll(to, buffer.AsSpan(0, read));
        }

        to.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Reads server chunks as they come and queues each with its due time.</summary>
    private void Hold(Socket from, BlockingCollection<(long Due, byte[] Data)> held)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = from.Receive(buffer)) > 0)
            {
                var due = Stopwatch.GetTimestamp() + (long)(Delay.TotalSeconds * Stopwatch.Frequency);
                held.Add((due, buffer.AsSpan(0, read).ToArray()));
            }
        }
        finally
        {
            held.CompleteAdding();
        }
    }

    private void SendWhenDue(BlockingCollection<(long Due, byte[] Data)> held, Socket to)
    {
        foreach (var (due, data) in held.GetConsumingEnumerable())
        {
            // Sleep most of the wait, then spin the last stretch: sleeps are only ~1 ms precise.
            var remaining = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
            if (remaining > TimeSpan.FromMilliseconds(2))
            {
                Thread.Sleep(remaining - TimeSpan.FromMilliseconds(1.5));
            }

            while (Stopwatch.GetTimestamp() < due)
            {
                Thread.SpinWait(50);
            }

            Interlocked.Add(ref _lateTicks, Stopwatch.GetElapsedTime(due).Ticks);
            Interlocked.Increment(ref _chunks);
            SendAll(to, data);
        }

        to.Shutdown(SocketShutdown.Send);
    }

    private static void SendAll(Socket to, ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            data = data[to.Send(data)..];
        }
    }

    private static void Shutdown(Socket socket)
    {
        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
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
