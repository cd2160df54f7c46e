using System.Net;
using System.Net.Sockets;

namespace MailPipe.Tests.Support;

/// <summary>
/// A one-connection TCP server on 127.0.0.1 (an ephemeral port) whose behaviour a test writes as a delegate over the
/// accepted socket; it records every byte it read from the client. For the cases a real socket shows and an in-memory
/// pipe cannot: resets, orderly closes, a server that stops reading, a client that reconnects by host and port.
/// </summary>
internal sealed class LoopbackServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _safety = new(TimeSpan.FromSeconds(30));
    private readonly MemoryStream _received = new();
    private readonly Lock _lock = new();

    private LoopbackServer(Func<LoopbackServer, Socket, CancellationToken, Task> behaviour)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        Completion = RunAsync(behaviour);
    }

    public static LoopbackServer Start(Func<LoopbackServer, Socket, CancellationToken, Task> behaviour) => new(behaviour);

    public int Port { get; }

    public Task Completion { get; }

    /// <summary>Every byte read from the client so far.</summary>
    public byte[] Received
    {
        get
        {
            lock (_lock)
            {
                return _received.ToArray();
            }
        }
    }

    public string ReceivedText => System.Text.Encoding.Latin1.GetString(Received);

    /// <summary>Reads one line (through LF) from the client, recording it; null at end of stream.</summary>
    public async Task<string?> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            var read = await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                return line.Count == 0 ? null : System.Text.Encoding.Latin1.GetString([.. line]);
            }

            Record(one.AsSpan(0, 1));
            line.Add(one[0]);
            if (one[0] == '\n')
            {
                return System.Text.Encoding.Latin1.GetString([.. line]);
            }
        }
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes (fewer at end of stream), recording them.</summary>
    public async Task<int> ReadBytesAsync(Socket socket, int count, CancellationToken cancellationToken)
    {
        var buffer = new byte[Math.Min(count, 64 * 1024)];
        var total = 0;
        while (total < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(0, Math.Min(buffer.Length, count - total)), SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                break;
            }

            Record(buffer.AsSpan(0, read));
            total += read;
        }

        return total;
    }

    /// <summary>Reads and records until the client closes (or the connection breaks).</summary>
    public async Task ReadToEndAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
            {
                Record(buffer.AsSpan(0, read));
            }
        }
        catch (SocketException)
        {
        }
    }

    public static Task SendAsync(Socket socket, string text, CancellationToken cancellationToken) =>
        socket.SendAsync(System.Text.Encoding.Latin1.GetBytes(text), SocketFlags.None, cancellationToken).AsTask();

    /// <summary>Closes with a reset (RST), not an orderly FIN.</summary>
    public static void Reset(Socket socket)
    {
        socket.LingerState = new LingerOption(true, 0);
        socket.Close();
    }

    private void Record(ReadOnlySpan<byte> bytes)
    {
        lock (_lock)
        {
            _received.Write(bytes);
        }
    }

    private async Task RunAsync(Func<LoopbackServer, Socket, CancellationToken, Task> behaviour)
    {
        using var socket = await _listener.AcceptSocketAsync(_safety.Token);
        try
        {
            await behaviour(this, socket, _safety.Token);
        }
        catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away: what the server read is recorded; the test judges it.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _safety.CancelAsync();
        _listener.Stop();
        try
        {
            await Completion.WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (Exception)
        {
        }

        _safety.Dispose();
    }
}
