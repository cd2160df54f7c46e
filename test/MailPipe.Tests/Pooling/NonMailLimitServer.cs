using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A loopback SMTP server that counts "nonmail" commands as Exim 4.96 does (smtp_accept_max_nonmail): every NOOP, VRFY,
/// EXPN, HELP, ETRN, every HELO/EHLO but the first, and every RSET but the first of the session or the first after a
/// message's data was taken; past <see cref="Limit"/> it answers "554 Too many nonmail commands" and closes without
/// reading on. PIPELINING, CHUNKING (optional); <c>unknown*@</c> recipients get 550; a DATA or BDAT without a valid
/// recipient gets 503 (its chunk read and dropped). Replies are written as each command is processed.
/// </summary>
internal sealed class NonMailLimitServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Socket> _sockets = [];
    private readonly Task _accepting;
    private readonly bool _chunking;
    private int _connections;
    private int _drops;
    private int _open;
    private int _mostOpen;

    public NonMailLimitServer(int limit = 10, bool chunking = true)
    {
        Limit = limit;
        _chunking = chunking;
        _listener.Start(256);
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    /// <summary>The most nonmail commands a connection may send; the next one ends it.</summary>
    public int Limit { get; }

    public int Port { get; }

    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Connections ended with "554 Too many nonmail commands".</summary>
    public int Drops => Volatile.Read(ref _drops);

    /// <summary>The most connections that were open at once.</summary>
    public int MostOpen => Volatile.Read(ref _mostOpen);

    /// <summary>Copies stored, by recipient.</summary>
    public ConcurrentDictionary<string, int> Stored { get; } = new(StringComparer.Ordinal);

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
            Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var open = Interlocked.Increment(ref _open);
        int most;
        while (open > (most = Volatile.Read(ref _mostOpen)) && Interlocked.CompareExchange(ref _mostOpen, open, most) != most)
        {
        }

        var stream = new NetworkStream(socket, ownsSocket: true);
        var reader = PipeReader.Create(stream);
        try
        {
            await LoopbackSmtpServer.WriteAsync(stream, "220 nonmail.test ESMTP\r\n");
            var counted = 0;
            var resetFree = true;
            var helloFree = true;
            string? from = null;
            List<string> recipients = [];
            var data = new MemoryStream();
            while (true)
            {
                var line = await LoopbackSmtpServer.ReadLineAsync(reader);
                if (line is null)
                {
                    return;
                }

                var verb = (line.Length >= 4 ? line[..4] : line).ToUpperInvariant();
                var nonMail = verb switch
                {
                    "RSET" => !resetFree,
                    "EHLO" or "HELO" => !helloFree,
                    "NOOP" or "VRFY" or "EXPN" or "HELP" or "ETRN" => true,
                    _ => false,
                };
                if (verb == "RSET")
                {
                    resetFree = false;
                }

                if (verb is "EHLO" or "HELO")
                {
                    helloFree = false;
                }

                if (nonMail && ++counted > Limit)
                {
                    Interlocked.Increment(ref _drops);
                    await LoopbackSmtpServer.WriteAsync(stream, "554 Too many nonmail commands\r\n");
                    return;
                }

                switch (verb)
                {
                    case "EHLO":
                        await LoopbackSmtpServer.WriteAsync(stream, "250-nonmail.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n" + (_chunking ? "250-CHUNKING\r\n" : string.Empty) + "250 SIZE 10485760\r\n");
                        break;
                    case "HELO" or "NOOP":
                        await LoopbackSmtpServer.WriteAsync(stream, "250 OK\r\n");
                        break;
                    case "RSET":
                        (from, recipients) = (null, []);
                        await LoopbackSmtpServer.WriteAsync(stream, "250 Reset OK\r\n");
                        break;
                    case "MAIL":
                        if (from is not null)
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "503 sender already given\r\n");
                            break;
                        }

                        from = LoopbackSmtpServer.Between(line, '<', '>');
                        await LoopbackSmtpServer.WriteAsync(stream, "250 OK\r\n");
                        break;
                    case "RCPT":
                        var to = LoopbackSmtpServer.Between(line, '<', '>');
                        if (from is null)
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "503 sender not yet given\r\n");
                        }
                        else if (to.StartsWith("unknown", StringComparison.OrdinalIgnoreCase))
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "550 Unknown user\r\n");
                        }
                        else
                        {
                            recipients.Add(to);
                            await LoopbackSmtpServer.WriteAsync(stream, "250 Accepted\r\n");
                        }

                        break;
                    case "DATA":
                        if (recipients.Count == 0)
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "503 Valid RCPT command must precede DATA\r\n");
                            break;
                        }

                        await LoopbackSmtpServer.WriteAsync(stream, "354 Enter message, ending with \".\" on a line by itself\r\n");
                        while (await LoopbackSmtpServer.ReadLineAsync(reader) is { } dataLine && dataLine != ".")
                        {
                        }

                        Store(recipients);
                        (from, recipients, resetFree) = (null, [], true);
                        await LoopbackSmtpServer.WriteAsync(stream, "250 OK id=1\r\n");
                        break;
                    case "BDAT":
                        var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                        var last = words.Length > 2 && words[2].Equals("LAST", StringComparison.OrdinalIgnoreCase);
                        data.SetLength(0);
                        if (!await LoopbackSmtpServer.ReadBytesAsync(reader, long.Parse(words[1], System.Globalization.CultureInfo.InvariantCulture), data))
                        {
                            return;
                        }

                        if (recipients.Count == 0)
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "503 Valid RCPT command must precede BDAT\r\n");
                            break;
                        }

                        if (last)
                        {
                            Store(recipients);
                            (from, recipients, resetFree) = (null, [], true);
                            await LoopbackSmtpServer.WriteAsync(stream, "250 OK id=1\r\n");
                        }
                        else
                        {
                            await LoopbackSmtpServer.WriteAsync(stream, "250 chunk received\r\n");
                        }

                        break;
                    case "QUIT":
                        await LoopbackSmtpServer.WriteAsync(stream, "221 closing connection\r\n");
                        return;
                    default:
                        await LoopbackSmtpServer.WriteAsync(stream, "500 unrecognized command\r\n");
                        break;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client dropped the connection.
        }
        finally
        {
            Interlocked.Decrement(ref _open);
            await reader.CompleteAsync();
            await stream.DisposeAsync();
        }
    }

    private void Store(List<string> recipients)
    {
        foreach (var recipient in recipients)
        {
            Stored.AddOrUpdate(recipient, 1, (_, n) => n + 1);
        }
    }
}
