using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace MailPipe.Tests.Pooling;

/// <summary>A message as the loopback server stored it.</summary>
internal sealed record ReceivedMessage(int Connection, string From, IReadOnlyList<string> Recipients, byte[] Data)
{
    public string? MessageId
    {
        get
        {
            var match = Regex.Match(Encoding.ASCII.GetString(Data), @"^Message-Id:\s*(<[^>\r\n]+>)", RegexOptions.Multiline | RegexOptions.IgnoreCase);
            return match.Success ? match.Groups[1].Value : null;
        }
    }
}

/// <summary>
/// A small, correct SMTP server on 127.0.0.1 for the pool tests: PIPELINING, 8BITMIME, SIZE and (optionally) CHUNKING;
/// every recipient accepted except <c>unknown*@</c> (550); stores each message it accepted, with the number of the
/// connection that brought it. Replies are written as soon as each command is processed.
/// </summary>
internal sealed class LoopbackSmtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly Task _accepting;
    private readonly bool _chunking;
    private readonly TaskCompletionSource _dataReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _connections;
    private int _activeSessions;
    private int _noops;
    private int _quits;
    private long _contentBytes;
    private int _endedInContent;

    public LoopbackSmtpServer(bool chunking = true)
    {
        _chunking = chunking;
        _listener.Start(512);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Connections whose session has not ended yet (the server may still be reading what the client wrote before it closed).</summary>
    public int ActiveSessions => Volatile.Read(ref _activeSessions);

    /// <summary>NOOP commands received.</summary>
    public int Noops => Volatile.Read(ref _noops);

    /// <summary>QUIT commands received.</summary>
    public int Quits => Volatile.Read(ref _quits);

    /// <summary>How long the server waits before its 354 to DATA (a slow server: a batch with DATA takes a while).</summary>
    public TimeSpan DataDelay { get; set; }

    /// <summary>When set, every 354 to DATA waits for this task (a test holds a batch at its first transaction, before its content).</summary>
    public Task? DataGate { get; set; }

    /// <summary>Completes when the first DATA command (with a transaction to go with it) arrives.</summary>
    public Task DataReceived => _dataReceived.Task;

    /// <summary>When set, the greeting waits for this task (a test lets callers queue up before the first connection is ready).</summary>
    public Task? GreetingGate { get; set; }

    /// <summary>When set, accepted connections get no greeting (a server that hangs).</summary>
    public bool Silent { get; set; }

    /// <summary>Answers EHLO with 502 (not recognized), as a server from before RFC 1869 does: only HELO is known.</summary>
    public bool HeloOnly { get; set; }

    public ConcurrentQueue<ReceivedMessage> Received { get; } = new();

    /// <summary>Every command line received (data excluded), with the number of its connection, in arrival order per connection.</summary>
    public ConcurrentQueue<(int Connection, string Line)> Commands { get; } = new();

    /// <summary>Content octets received so far (DATA lines and BDAT chunks), stored or not.</summary>
    public long ContentBytes => Interlocked.Read(ref _contentBytes);

    /// <summary>Connections that ended in the middle of DATA content (before the final dot) or of a BDAT chunk.</summary>
    public int EndedInContent => Volatile.Read(ref _endedInContent);

    /// <summary>The command lines of connection <paramref name="connection"/>.</summary>
    public IReadOnlyList<string> CommandsOf(int connection) => [.. Commands.Where(c => c.Connection == connection).Select(c => c.Line)];

    /// <summary>Messages stored whose Message-Id is <paramref name="messageId"/>.</summary>
    public int CountOf(string messageId) => Received.Count(m => m.MessageId == messageId);

    /// <summary>Polls until <paramref name="condition"/> holds (the server stores on another thread).</summary>
    public async Task WaitUntilAsync(Func<LoopbackSmtpServer, bool> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!condition(this) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        foreach (var socket in _sockets)
        {
            socket.Dispose();
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
            var socket = await _listener.AcceptSocketAsync(_stop.Token);
            socket.NoDelay = true;
            _sockets.Add(socket);
            var number = Interlocked.Increment(ref _connections);
            Interlocked.Increment(ref _activeSessions);
            _ = Task.Run(() => ServeAsync(socket, number));
        }
    }

    private async Task ServeAsync(Socket socket, int number)
    {
        await using var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = PipeReader.Create(stream);
        var inContent = false;
        try
        {
            if (Silent)
            {
                await Task.Delay(Timeout.Infinite, _stop.Token);
            }

            if (GreetingGate is { } gate)
            {
                await gate.WaitAsync(_stop.Token);
            }

            await WriteAsync(stream, "220 loopback ESMTP\r\n");
            string? from = null;
            List<string> recipients = [];
            var data = new MemoryStream();
            while (true)
            {
                var line = await ReadLineAsync(reader);
                if (line is null)
                {
                    return;
                }

                Commands.Enqueue((number, line));
                var verb = (line.Length >= 4 ? line[..4] : line).ToUpperInvariant();
                switch (verb)
                {
                    case "EHLO" when HeloOnly:
                        await WriteAsync(stream, "502 5.5.2 Error: command not recognized\r\n");
                        break;
                    case "EHLO":
                        await WriteAsync(stream, "250-loopback\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n" + (_chunking ? "250-CHUNKING\r\n" : string.Empty) + "250 SIZE 10485760\r\n");
                        break;
                    case "NOOP":
                        Interlocked.Increment(ref _noops);
                        await WriteAsync(stream, "250 2.0.0 Ok\r\n");
                        break;
                    case "HELO":
                        await WriteAsync(stream, "250 2.0.0 Ok\r\n");
                        break;
                    case "RSET":
                        from = null;
                        recipients.Clear();
                        data.SetLength(0);
                        await WriteAsync(stream, "250 2.0.0 Ok\r\n");
                        break;
                    case "MAIL":
                        if (from is not null)
                        {
                            await WriteAsync(stream, "503 5.5.1 Error: nested MAIL command\r\n");
                            break;
                        }

                        from = Between(line, '<', '>');
                        recipients.Clear();
                        data.SetLength(0);
                        await WriteAsync(stream, "250 2.1.0 Ok\r\n");
                        break;
                    case "RCPT":
                        var to = Between(line, '<', '>');
                        if (from is null)
                        {
                            await WriteAsync(stream, "503 5.5.1 Error: need MAIL command\r\n");
                        }
                        else if (to.StartsWith("unknown", StringComparison.OrdinalIgnoreCase))
                        {
                            await WriteAsync(stream, "550 5.1.1 <" + to + ">: Recipient address rejected: User unknown\r\n");
                        }
                        else
                        {
                            recipients.Add(to);
                            await WriteAsync(stream, "250 2.1.5 Ok\r\n");
                        }

                        break;
                    case "DATA":
                        if (from is null || recipients.Count == 0)
                        {
                            await WriteAsync(stream, "554 5.5.1 Error: no valid recipients\r\n");
                            break;
                        }

                        _dataReceived.TrySetResult();
                        if (DataGate is { } dataGate)
                        {
                            await dataGate.WaitAsync(_stop.Token);
                        }

                        if (DataDelay > TimeSpan.Zero)
                        {
                            await Task.Delay(DataDelay);
                        }

                        await WriteAsync(stream, "354 End data with <CR><LF>.<CR><LF>\r\n");
                        inContent = true;
                        while (true)
                        {
                            var dataLine = await ReadLineAsync(reader);
                            if (dataLine is null)
                            {
                                return;
                            }

                            Interlocked.Add(ref _contentBytes, dataLine.Length + 2);

                            if (dataLine == ".")
                            {
                                inContent = false;
                                break;
                            }

                            var bytes = Encoding.Latin1.GetBytes((dataLine.StartsWith('.') ? dataLine[1..] : dataLine) + "\r\n");
                            data.Write(bytes);
                        }

                        Received.Enqueue(new ReceivedMessage(number, from, [.. recipients], data.ToArray()));
                        from = null;
                        await WriteAsync(stream, "250 2.0.0 Ok: queued\r\n");
                        break;
                    case "BDAT":
                        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        var size = long.Parse(words[1], System.Globalization.CultureInfo.InvariantCulture);
                        var last = words.Length > 2 && words[2].Equals("LAST", StringComparison.OrdinalIgnoreCase);
                        inContent = true;
                        if (!await ReadBytesAsync(reader, size, data))
                        {
                            return;
                        }

                        inContent = false;

                        Interlocked.Add(ref _contentBytes, size);

                        if (from is null || recipients.Count == 0)
                        {
                            await WriteAsync(stream, "554 5.5.1 Error: no valid recipients\r\n");
                            from = null;
                            break;
                        }

                        if (last)
                        {
                            Received.Enqueue(new ReceivedMessage(number, from, [.. recipients], data.ToArray()));
                            from = null;
                            await WriteAsync(stream, "250 2.0.0 Ok: queued\r\n");
                        }
                        else
                        {
                            await WriteAsync(stream, "250 2.0.0 Ok: " + size + " octets\r\n");
                        }

                        break;
                    case "QUIT":
                        Interlocked.Increment(ref _quits);
                        await WriteAsync(stream, "221 2.0.0 Bye\r\n");
                        return;
                    default:
                        await WriteAsync(stream, "502 5.5.2 Error: command not recognized\r\n");
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client or a test proxy dropped the connection.
        }
        finally
        {
            if (inContent)
            {
                Interlocked.Increment(ref _endedInContent);
            }

            await reader.CompleteAsync();
            Interlocked.Decrement(ref _activeSessions);
        }
    }

    internal static string Between(string line, char open, char close)
    {
        var start = line.IndexOf(open, StringComparison.Ordinal);
        var end = line.IndexOf(close, start + 1);
        return start < 0 || end < 0 ? string.Empty : line[(start + 1)..end];
    }

    internal static async Task WriteAsync(Stream stream, string text)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes(text));
        await stream.FlushAsync();
    }

    internal static async Task<string?> ReadLineAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            var buffer = result.Buffer;
            var position = buffer.PositionOf((byte)'\n');
            if (position is { } lf)
            {
                var line = buffer.Slice(0, lf);
                var text = Encoding.Latin1.GetString(line.ToArray()).TrimEnd('\r');
                reader.AdvanceTo(buffer.GetPosition(1, lf));
                return text;
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return null;
            }
        }
    }

    internal static async Task<bool> ReadBytesAsync(PipeReader reader, long count, MemoryStream into)
    {
        while (count > 0)
        {
            var result = await reader.ReadAsync();
            var buffer = result.Buffer;
            var take = Math.Min(count, buffer.Length);
            foreach (var segment in buffer.Slice(0, take))
            {
                into.Write(segment.Span);
            }

            count -= take;
            reader.AdvanceTo(buffer.GetPosition(take));
            if (count > 0 && result.IsCompleted)
            {
                return false;
            }
        }

        return true;
    }
}
