using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The listening part of the CLI tests' scripted SMTP servers on 127.0.0.1: any number of connections, one after the
/// other or at once, each numbered from 1 and served by <see cref="ServeAsync"/> on its own task; disposal stops
/// listening, cancels the sessions and waits for them.
/// </summary>
internal abstract class ScriptedServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Task> _sessions = [];
    private readonly Task _accepting;
    private int _connections;

    protected ScriptedServer()
    {
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;

        // A connection is served only once it is made, after the derived server's constructor and initializers ran.
        _accepting = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>How many connections were accepted.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        foreach (var session in _sessions)
        {
            try
            {
                await session;
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
            {
            }
        }

        _stop.Dispose();
    }

    /// <summary>Writes one reply line (CRLF added) to the client.</summary>
    protected static Task WriteAsync(Stream stream, string reply, CancellationToken cancellationToken) =>
        stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(reply + "\r\n"), cancellationToken).AsTask();

    /// <summary>Serves one connection (number <paramref name="connection"/>, from 1) until it ends or <paramref name="cancellationToken"/> is cancelled.</summary>
    protected abstract Task ServeAsync(TcpClient client, int connection, CancellationToken cancellationToken);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptTcpClientAsync(_stop.Token);
            var number = Interlocked.Increment(ref _connections);
            _sessions.Add(Task.Run(() => ServeAsync(client, number, _stop.Token)));
        }
    }
}
