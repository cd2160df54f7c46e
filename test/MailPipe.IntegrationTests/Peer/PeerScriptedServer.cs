using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.IntegrationTests.Peer;

/// <summary>
/// A tiny loopback SMTP server for the few promises the real servers cannot be made to show on demand: a server that
/// never answers (timeouts, waiting for a connection), one that keeps the reply to the end of data (a cancellation
/// after it), one that drops the connection right after the end of data (Unknown). Every step is an event a test
/// awaits, never a sleep. DATA only (no PIPELINING, no CHUNKING), so the end of data is the line ".".
/// </summary>
public sealed class PeerScriptedServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _clients = [];
    private readonly Task _acceptLoop;
    private readonly TaskCompletionSource _endOfData = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _accepted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _quit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _endsOfData;
    private int _disposed;
    private int _connections;

    public PeerScriptedServer(Mode mode)
    {
        ServerMode = mode;
        _listener.Start();
        _acceptLoop = AcceptAsync();
    }

    public enum Mode
    {
        /// <summary>Accepts connections and never writes a byte.</summary>
        BlackHole,

        /// <summary>Answers everything with success, but never answers the end of data.</summary>
        HoldFinalReply,

        /// <summary>Answers everything with success and closes the connection as soon as the end of data arrives.</summary>
        CloseAfterEndOfData,

        /// <summary>Drops the first connection when its first MAIL arrives (nothing of the message read); answers everything with success on the others.</summary>
        DropFirstConnectionAtMail,

        /// <summary>Accepts each message (250 to the end of data), then closes that connection at once: an idle pooled connection gone stale.</summary>
        CloseAfterEachMessage,

        /// <summary>Answers everything but QUIT, which it leaves unanswered until the server is disposed.</summary>
        HoldQuit,
    }

    public Mode ServerMode { get; }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Completes when the first end of data (the "." line) has been read.</summary>
    public Task EndOfDataReceived => _endOfData.Task;

    /// <summary>How many ends of data were read, on every connection.</summary>
    public int EndsOfData => Volatile.Read(ref _endsOfData);

    /// <summary>Completes when a QUIT has been read (<see cref="Mode.HoldQuit"/>).</summary>
    public Task QuitReceived => _quit.Task;

    /// <summary>How many connections have been answered (greeted).</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Completes when the first connection has been accepted.</summary>
    public Task ConnectionAccepted => _accepted.Task;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

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
            await _acceptLoop;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Stopped.
        }

        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            lock (_clients)
            {
                _clients.Add(client);
            }

            _accepted.TrySetResult();
            if (ServerMode != Mode.BlackHole)
            {
                _ = Task.Run(() => ConverseAsync(client));
            }
        }
    }

    private async Task ConverseAsync(TcpClient client)
    {
        var connection = Interlocked.Increment(ref _connections);
        try
        {
            var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.Latin1);
            async Task Reply(string text) => await stream.WriteAsync(Encoding.ASCII.GetBytes(text + "\r\n"), _stop.Token);

            await Reply("220 peer.scripted ESMTP");
            var inData = false;
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                if (inData)
                {
                    if (line == ".")
                    {
                        inData = false;
                        Interlocked.Increment(ref _endsOfData);
                        _endOfData.TrySetResult();
                        if (ServerMode == Mode.CloseAfterEndOfData)
                        {
                            client.Client.Shutdown(SocketShutdown.Both);
                            client.Dispose();
                            return;
                        }

                        if (ServerMode is Mode.DropFirstConnectionAtMail or Mode.CloseAfterEachMessage)
                        {
                            await Reply("250 queued");
                        }

                        if (ServerMode == Mode.CloseAfterEachMessage)
                        {
                            client.Client.Shutdown(SocketShutdown.Both);
                            client.Dispose();
                            return;
                        }
                    }

                    continue;
                }

                var verb = line.Split(' ', 2)[0].ToUpperInvariant();
                if (verb == "MAIL" && ServerMode == Mode.DropFirstConnectionAtMail && connection == 1)
                {
                    client.Client.Shutdown(SocketShutdown.Both);
                    client.Dispose();
                    return;
                }

                switch (verb)
                {
                    case "EHLO":
                        await Reply("250-peer.scripted\r\n250 8BITMIME");
                        break;
                    case "DATA":
                        inData = true;
                        await Reply("354 go ahead");
                        break;
                    case "QUIT" when ServerMode == Mode.HoldQuit:
                        _quit.TrySetResult();
                        break;
                    case "QUIT":
                        await Reply("221 bye");
                        client.Dispose();
                        return;
                    default:
                        await Reply("250 ok");
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away, or the server is stopping.
        }
    }
}
