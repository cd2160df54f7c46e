using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Support;

/// <summary>
/// A server end over a real loopback TCP socket, driven step by step by the test (for what an in-memory stream cannot
/// show: data sitting in the socket before the client reads). Records every byte the client sends.
/// </summary>
internal sealed class LoopbackPeer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly MemoryStream _received = new();
    private Socket? _socket;
    private Task? _reader;

    public LoopbackPeer()
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Every byte the client has sent so far.</summary>
    public string ReceivedText
    {
        get
        {
            lock (_received)
            {
                return Encoding.Latin1.GetString(_received.ToArray());
            }
        }
    }

    /// <summary>Accepts the client's connection, sends the greeting and starts recording what the client sends.</summary>
    public async Task AcceptAsync(string greeting = "220 loopback.test ESMTP")
    {
        _socket = await _listener.AcceptSocketAsync().WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        _reader = Task.Run(RecordAsync);
        await SendAsync(greeting);
    }

    /// <summary>Sends lines (each followed by CRLF) in one write; on loopback they are in the client's socket when this completes.</summary>
    public async Task SendAsync(params string[] lines)
    {
        var bytes = Encoding.ASCII.GetBytes(string.Concat(lines.Select(static l => l + "\r\n")));
        await _socket!.SendAsync(bytes, SocketFlags.None).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
    }

    /// <summary>Waits until the client has sent <paramref name="text"/> (recorded so far or later).</summary>
    public async Task WaitForAsync(string text)
    {
        using var limit = new CancellationTokenSource(ScriptedSmtpServer.SafetyTimeout);
        while (!ReceivedText.Contains(text, StringComparison.Ordinal))
        {
            await Task.Delay(5, limit.Token);
        }
    }

    /// <summary>Waits until the client closes the connection.</summary>
    public Task WaitForCloseAsync() => _reader!.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

    public async ValueTask DisposeAsync()
    {
        _socket?.Dispose();
        _listener.Stop();
        if (_reader is not null)
        {
            await _reader.ContinueWith(static _ => { }, TaskScheduler.Default);
        }
    }

    private async Task RecordAsync()
    {
        var buffer = new byte[4096];
        while (true)
        {
            int read;
            try
            {
                read = await _socket!.ReceiveAsync(buffer);
            }
            catch (SocketException)
            {
                return;
            }

            if (read == 0)
            {
                return;
            }

            lock (_received)
            {
                _received.Write(buffer, 0, read);
            }
        }
    }
}
