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

    /// <summary>
    /// Sends lines (each followed by CRLF) in one write, and returns once they are in the client's socket: acknowledged
    /// by the client's TCP stack. A completed send only means the bytes left this socket's buffer; on a loaded machine
    /// loopback delivery can come later (softirq work deferred to ksoftirqd).
    /// </summary>
    public async Task SendAsync(params string[] lines)
    {
        var bytes = Encoding.ASCII.GetBytes(string.Concat(lines.Select(static l => l + "\r\n")));
        await _socket!.SendAsync(bytes, SocketFlags.None).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await WaitUntilAcknowledgedAsync(_socket);
    }

    /// <summary>Waits until nothing this socket sent is unacknowledged (Linux: <c>tcpi_unacked</c> of TCP_INFO is 0).</summary>
    private static async Task WaitUntilAcknowledgedAsync(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            await Task.Delay(50);
            return;
        }

        const int IpProtoTcp = 6;
        const int TcpInfo = 11;
        const int UnackedOffset = 24; // struct tcp_info: 8 one-byte fields, then __u32 rto, ato, snd_mss, rcv_mss, unacked
        var info = new byte[256];
        using var limit = new CancellationTokenSource(ScriptedSmtpServer.SafetyTimeout);
        while (true)
        {
            var length = socket.GetRawSocketOption(IpProtoTcp, TcpInfo, info);
            if (length < UnackedOffset + sizeof(uint) || BitConverter.ToUInt32(info, UnackedOffset) == 0)
            {
                return;
            }

            await Task.Delay(5, limit.Token);
        }
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
