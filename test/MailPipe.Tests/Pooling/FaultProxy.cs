using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>Where the next connection through a <see cref="FaultProxy"/> breaks.</summary>
internal enum DropPoint
{
    /// <summary>Never.</summary>
    None,

    /// <summary>Just before the client's n-th MAIL command on the connection reaches the server (mid-batch).</summary>
    BeforeNthMail,

    /// <summary>Right after the client's first end of data (the final dot, or BDAT ... LAST with its data) reached the server, before its reply comes back.</summary>
    AfterFinalDot,
}

/// <summary>
/// A TCP proxy on 127.0.0.1 in front of a server, for fault injection: it closes the connections it relays (with or
/// without a 421 first, as a server restart or idle timeout does), refuses new connections for a while (its listener
/// is closed: connects get ECONNREFUSED), and breaks one connection at a chosen point of the client's stream.
/// </summary>
internal sealed class FaultProxy : IAsyncDisposable
{
    private static readonly byte[] Mail = "MAIL FROM:"u8.ToArray();
    private static readonly byte[] Dot = "\r\n.\r\n"u8.ToArray();

    /// <summary>A command no client sends, and the server's reply to it (which no client command gets): see <see cref="Relay"/>'s drop with a reply.</summary>
    private static readonly byte[] SyncCommand = "XSYNC\r\n"u8.ToArray();
    private static readonly byte[] SyncReply = "502 5.5.2 Error: command not recognized\r\n"u8.ToArray();
    private readonly int _target;
    private readonly Lock _lock = new();
    private readonly List<Relay> _relays = [];
    private TcpListener? _listener;
    private Task? _accepting;
    private DropPoint _drop;
    private int _dropN;
    private string? _dropReply;
    private int _connections;

    public FaultProxy(int targetPort)
    {
        _target = targetPort;
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start(512);
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        _listener = listener;
        _accepting = AcceptAsync(listener);
    }

    public int Port { get; }

    /// <summary>
    /// Keeps a connection dropped without a reply open (its replies no longer relayed: a server that stopped answering)
    /// until this completes, instead of closing it 200 ms after the drop; for a test whose client must act (cancel)
    /// while it still waits for the reply. Null: closed then.
    /// </summary>
    public Task? HoldDroppedConnection { get; set; }

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Connections open now.</summary>
    public int Open
    {
        get
        {
            lock (_lock)
            {
                return _relays.Count;
            }
        }
    }

    /// <summary>Arms a drop for the next connection that reaches the point (one connection only).</summary>
    public void DropNext(DropPoint point, int n = 1, string? reply = null)
    {
        lock (_lock)
        {
            _drop = point;
            _dropN = n;
            _dropReply = reply;
        }
    }

    /// <summary>What the proxy says to the client before it drops the connection (such as a 421), if anything.</summary>
    private string? TakeDropReply()
    {
        lock (_lock)
        {
            var reply = _dropReply;
            _dropReply = null;
            return reply;
        }
    }

    /// <summary>Closes every relayed connection; with <paramref name="reply"/> (such as a 421) sent to the client first.</summary>
    public async Task CloseAllAsync(string? reply = null)
    {
        Relay[] relays;
        lock (_lock)
        {
            relays = [.. _relays];
        }

        foreach (var relay in relays)
        {
            await relay.CloseAsync(reply);
        }
    }

    /// <summary>Writes <paramref name="text"/> (CRLF appended) to the client of every relayed connection, which stays open: an unsolicited reply.</summary>
    public async Task InjectAllAsync(string text)
    {
        Relay[] relays;
        lock (_lock)
        {
            relays = [.. _relays];
        }

        foreach (var relay in relays)
        {
            await relay.InjectAsync(text + "\r\n");
        }
    }

    /// <summary>Stops accepting: new connections are refused (a server down) until <see cref="Accept"/>.</summary>
    public async Task RefuseAsync()
    {
        TcpListener? listener;
        Task? accepting;
        lock (_lock)
        {
            (listener, _listener) = (_listener, null);
            (accepting, _accepting) = (_accepting, null);
        }

        listener?.Stop();
        listener?.Dispose();
        if (accepting is not null)
        {
            try
            {
                await accepting;
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
    }

    /// <summary>Accepts connections again on the same port (the server is back).</summary>
    public void Accept()
    {
        var listener = new TcpListener(IPAddress.Loopback, Port);
        listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        listener.Start(512);
        lock (_lock)
        {
            _listener = listener;
            _accepting = AcceptAsync(listener);
        }
    }

    /// <summary>A server restart: every connection closed (with <paramref name="reply"/> first, if any), and new ones refused until <see cref="Accept"/>.</summary>
    public async Task GoDownAsync(string? reply = null)
    {
        await RefuseAsync();
        await CloseAllAsync(reply);
    }

    public async ValueTask DisposeAsync()
    {
        await RefuseAsync();
        await CloseAllAsync();
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            Interlocked.Increment(ref _connections);
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            try
            {
                await server.ConnectAsync(IPAddress.Loopback, _target);
            }
            catch (SocketException)
            {
                client.Dispose();
                server.Dispose();
                continue;
            }

            var relay = new Relay(this, client, server);
            lock (_lock)
            {
                _relays.Add(relay);
            }

            relay.Start();
        }
    }

    /// <summary>Takes the armed drop, if this connection's data reaches it: the number of bytes to forward before dropping, or -1.</summary>
    private int CheckDrop(Relay relay, ReadOnlySpan<byte> chunk)
    {
        lock (_lock)
        {
            if (_drop == DropPoint.None)
            {
                return -1;
            }

            var searchFrom = 0;
            while (true)
            {
                if (_drop == DropPoint.BeforeNthMail)
                {
                    var at = chunk[searchFrom..].IndexOf(Mail);
                    if (at < 0)
                    {
                        return -1;
                    }

                    relay.Mails++;
                    if (relay.Mails == _dropN)
                    {
                        _drop = DropPoint.None;
                        return searchFrom + at;
                    }

                    searchFrom += at + Mail.Length;
                }
                else
                {
                    // The end of data of DATA; (a BDAT LAST is recognised by its command line, the data following it in the same chunk is forwarded).
                    var at = chunk.IndexOf(Dot);
                    var bdat = IndexOfBdatLast(chunk);
                    if (at < 0 && bdat < 0)
                    {
                        return -1;
                    }

                    _drop = DropPoint.None;
                    return at >= 0 ? at + Dot.Length : chunk.Length;
                }
            }
        }
    }

    private static int IndexOfBdatLast(ReadOnlySpan<byte> chunk)
    {
        var text = Encoding.ASCII.GetString(chunk);
        var at = text.IndexOf("BDAT ", StringComparison.Ordinal);
        while (at >= 0)
        {
            var end = text.IndexOf("\r\n", at, StringComparison.Ordinal);
            if (end > 0 && text[at..end].EndsWith(" LAST", StringComparison.Ordinal))
            {
                return at;
            }

            at = text.IndexOf("BDAT ", at + 5, StringComparison.Ordinal);
        }

        return -1;
    }

    private void Remove(Relay relay)
    {
        lock (_lock)
        {
            _relays.Remove(relay);
        }
    }

    private sealed class Relay(FaultProxy proxy, Socket client, Socket server)
    {
        private int _closed;
        private TaskCompletionSource? _synced;

        public int Mails { get; set; }

        public void Start()
        {
            _ = Task.Run(ClientToServerAsync);
            _ = Task.Run(ServerToClientAsync);
        }

        public async Task InjectAsync(string text) => await client.SendAsync(Encoding.ASCII.GetBytes(text));

        public async Task CloseAsync(string? reply)
        {
            if (Interlocked.Exchange(ref _closed, 1) != 0)
            {
                return;
            }

            proxy.Remove(this);
            if (reply is not null)
            {
                try
                {
                    await client.SendAsync(Encoding.ASCII.GetBytes(reply + "\r\n"));
                }
                catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
                {
                }
            }

            Shutdown(client);
            Shutdown(server);
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

            socket.Dispose();
        }

        private async Task ClientToServerAsync()
        {
            var buffer = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    var read = await client.ReceiveAsync(buffer);
                    if (read == 0)
                    {
                        break;
                    }

                    var drop = proxy.CheckDrop(this, buffer.AsSpan(0, read));
                    if (drop >= 0)
                    {
                        // A plain drop stops the replies first, so that the client never learns what the server did with
                        // what gets through. A drop with a reply (a server shutting down: 421) lets the server's replies
                        // to what got through reach the client, then says the reply in place of the next one and closes.
                        var reply = proxy.TakeDropReply();
                        if (reply is null)
                        {
                            Interlocked.Exchange(ref _closed, 2);
                        }

                        if (reply is not null)
                        {
                            // The server answers what got through, then the 421 comes in place of the next reply. Not
                            // "wait a while": a command the server answers with a reply no client command gets marks
                            // the end of its replies (it answers in order), which are relayed; the marker's is not.
                            var synced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                            Volatile.Write(ref _synced, synced);
                            await server.SendAsync(buffer.AsMemory(0, drop));
                            await server.SendAsync(SyncCommand);
                            try
                            {
                                await synced.Task.WaitAsync(TimeSpan.FromSeconds(30));
                            }
                            catch (TimeoutException)
                            {
                                // The server is gone or stuck: drop all the same (the test's checks say what came of it).
                            }

                            await CloseAsync(reply);
                            return;
                        }

                        if (drop > 0)
                        {
                            await server.SendAsync(buffer.AsMemory(0, drop));
                        }

                        // Let the server read what got through before the connection goes (its replies are not relayed).
                        await Task.Delay(200);
                        if (proxy.HoldDroppedConnection is { } hold)
                        {
                            try
                            {
                                await hold.WaitAsync(TimeSpan.FromSeconds(60));
                            }
                            catch (TimeoutException)
                            {
                                // The test did not let it go (it failed before): closed now.
                            }
                        }

                        Volatile.Write(ref _closed, 0);
                        await CloseAsync(reply);
                        return;
                    }

                    await server.SendAsync(buffer.AsMemory(0, read));
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }

            await CloseAsync(null);
        }

        private async Task ServerToClientAsync()
        {
            var buffer = new byte[64 * 1024];
            var held = new List<byte>();
            try
            {
                while (true)
                {
                    var read = await server.ReceiveAsync(buffer);
                    if (read == 0 || Volatile.Read(ref _closed) == 2)
                    {
                        break;
                    }

                    if (Volatile.Read(ref _synced) is { Task.IsCompleted: false } synced)
                    {
                        // Syncing before a drop with a reply: held until the marker's reply, then relayed without it.
                        held.AddRange(buffer.AsSpan(0, read));
                        var at = held.ToArray().AsSpan().IndexOf(SyncReply);
                        if (at >= 0)
                        {
                            await client.SendAsync(held.ToArray().AsMemory(0, at));
                            synced.TrySetResult();
                        }

                        continue;
                    }

                    await client.SendAsync(buffer.AsMemory(0, read));
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }

            if (Volatile.Read(ref _closed) != 2)
            {
                await CloseAsync(null);
            }
        }
    }
}
