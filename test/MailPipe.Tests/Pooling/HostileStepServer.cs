using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Tests.Pooling;

/// <summary>The step of a conversation at which <see cref="HostileStepServer"/> misbehaves.</summary>
public enum HostileStep
{
    Greeting,
    Ehlo,
    StartTls,
    TlsHandshake,
    Auth,
    Mail,
    Rcpt,
    Data,
    Bdat,
    EndOfData,
    Rset,
    Noop,
    Quit,
}

/// <summary>What the server does at a step instead of its normal reply.</summary>
public enum HostileKind
{
    /// <summary>Sends <see cref="HostileAction.Bytes"/> instead of the reply, then goes on reading.</summary>
    Raw,

    /// <summary>Sends the normal reply one byte per write.</summary>
    PerByte,

    /// <summary>A reset (RST).</summary>
    Reset,

    /// <summary>An orderly close (FIN).</summary>
    Close,

    /// <summary>Never answers; reads until the client closes.</summary>
    Silent,
}

/// <summary>A misbehaviour of <see cref="HostileStepServer"/>.</summary>
public sealed record HostileAction(HostileKind Kind, string Bytes = "", bool Positive = false, bool CloseAfter = false, bool SilentAfter = false)
{
    public override string ToString() => Kind == HostileKind.Raw ? $"Raw({Printable(Bytes)})" : Kind.ToString();

    private static string Printable(string text)
    {
        var shown = text.Length > 40 ? text[..40] + "…" + text.Length : text;
        return shown.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal);
    }
}

/// <summary>
/// A small SMTP server on a loopback socket (EHLO with PIPELINING, optional CHUNKING and AUTH PLAIN; MAIL, RCPT, DATA,
/// BDAT, RSET, NOOP, QUIT) that asks <see cref="Fault"/> at every step of every connection whether to misbehave. It
/// records, by Message-Id, every end of data it read and every one it acknowledged with 250, so that a test can hold
/// each caller's outcome against what the server received.
/// </summary>
internal sealed class HostileStepServer : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentBag<Task> _connections = [];
    private readonly Task _accept;
    private readonly System.Security.Cryptography.X509Certificates.X509Certificate2? _certificate;
    private int _connectionCount;
    private int _silent;
    private int _ended;

    public HostileStepServer(bool chunking, bool auth = false, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        (Chunking, Auth, _certificate) = (chunking, auth, certificate);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accept = AcceptAsync();
    }

    public bool Chunking { get; }

    public bool Auth { get; }

    public int Port { get; }

    /// <summary>(connection index from 0, step) → a misbehaviour, or null for the normal reply.</summary>
    public Func<int, HostileStep, HostileAction?> Fault { get; set; } = (_, _) => null;

    public int Connections => Volatile.Read(ref _connectionCount);

    /// <summary>Connections the server has ended (closed or seen closed).</summary>
    public int ConnectionsEnded => Volatile.Read(ref _ended);

    /// <summary>Connections being silent now (reading until the client closes): only then may a test move a fake clock.</summary>
    public int SilentNow => Volatile.Read(ref _silent);

    /// <summary>Message-Ids whose end of data the server read.</summary>
    public ConcurrentQueue<string> EndsSeen { get; } = new();

    /// <summary>Message-Ids whose end of data the server acknowledged with 250 (recorded as the reply is written, before the client can read it).</summary>
    public ConcurrentQueue<string> EndsAcknowledged { get; } = new();

    public ConcurrentQueue<(int Connection, string Line)> Commands { get; } = new();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        try
        {
            await _accept;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        await Task.WhenAll(_connections).WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default);
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var socket = await _listener.AcceptSocketAsync(_stop.Token);
            socket.NoDelay = true;
            var index = Interlocked.Increment(ref _connectionCount) - 1;
            _connections.Add(Task.Run(() => ServeAsync(socket, index)));
        }
    }

    private async Task ServeAsync(Socket socket, int connection)
    {
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        var reader = new LineReader(stream);
        var tls = false;
        try
        {
            if (!await ReplyAsync(socket, stream, connection, HostileStep.Greeting, "220 hostile.test ESMTP\r\n"))
            {
                return;
            }

            var content = new MemoryStream();
            while (true)
            {
                var line = await reader.ReadLineAsync(_stop.Token);
                if (line is null)
                {
                    return;
                }

                Commands.Enqueue((connection, tls ? "(tls) " + line : line));
                var verb = (line.Split(' ')[0]).ToUpperInvariant();
                bool goOn;
                switch (verb)
                {
                    case "EHLO":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Ehlo, EhloReply(tls));
                        break;
                    case "STARTTLS":
                        var fault = Fault(connection, HostileStep.StartTls);
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.StartTls, "220 2.0.0 Ready to start TLS\r\n", action: fault);
                        if (goOn && (fault is null || fault.Kind == HostileKind.PerByte || fault.Positive))
                        {
                            var handshake = Fault(connection, HostileStep.TlsHandshake);
                            if (handshake is not null)
                            {
                                if (await ReplyAsync(socket, stream, connection, HostileStep.TlsHandshake, string.Empty, action: handshake))
                                {
                                    await ReplyAsync(socket, stream, connection, HostileStep.TlsHandshake, string.Empty, action: new HostileAction(HostileKind.Silent));
                                }

                                return;
                            }

                            var ssl = new System.Net.Security.SslStream(stream);
                            await ssl.AuthenticateAsServerAsync(_certificate!);
                            (stream, reader, tls) = (ssl, new LineReader(ssl), true);
                        }

                        break;
                    case "HELO":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Ehlo, "250 hostile.test\r\n");
                        break;
                    case "AUTH":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Auth, "235 2.7.0 Authentication successful\r\n");
                        break;
                    case "MAIL":
                        content.SetLength(0);
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Mail, "250 2.1.0 Ok\r\n");
                        break;
                    case "RCPT":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Rcpt, "250 2.1.5 Ok\r\n");
                        break;
                    case "DATA":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Data, "354 End data with <CR><LF>.<CR><LF>\r\n");
                        if (goOn)
                        {
                            goOn = await ReadDataAsync(reader, content) && await EndOfDataAsync(socket, stream, connection, content);
                        }

                        break;
                    case "BDAT":
                        var parts = line.Split(' ');
                        var size = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                        var chunk = await reader.ReadBytesAsync(size, _stop.Token);
                        if (chunk is null)
                        {
                            return;
                        }

                        content.Write(chunk);
                        goOn = parts.Length > 2 && parts[2].Equals("LAST", StringComparison.OrdinalIgnoreCase)
                            ? await EndOfDataAsync(socket, stream, connection, content)
                            : await ReplyAsync(socket, stream, connection, HostileStep.Bdat, $"250 2.0.0 {size} octets received\r\n");
                        break;
                    case "RSET":
                        content.SetLength(0);
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Rset, "250 2.0.0 Ok\r\n");
                        break;
                    case "NOOP":
                        goOn = await ReplyAsync(socket, stream, connection, HostileStep.Noop, "250 2.0.0 Ok\r\n");
                        break;
                    case "QUIT":
                        await ReplyAsync(socket, stream, connection, HostileStep.Quit, "221 2.0.0 Bye\r\n");
                        return;
                    default:
                        goOn = await WriteAsync(stream, "500 5.5.2 Error: command not recognized\r\n");
                        break;
                }

                if (!goOn)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
        }
        finally
        {
            await stream.DisposeAsync();
            Interlocked.Increment(ref _ended);
        }
    }

    private string EhloReply(bool tls) =>
        "250-hostile.test\r\n" + (_certificate is not null && !tls ? "250-STARTTLS\r\n" : string.Empty) + "250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n"
        + (Chunking ? "250-CHUNKING\r\n" : string.Empty)
        + (Auth ? "250-AUTH PLAIN\r\n" : string.Empty)
        + "250 SMTPUTF8\r\n";

    private async Task<bool> EndOfDataAsync(Socket socket, Stream stream, int connection, MemoryStream content)
    {
        var id = MessageIdOf(content);
        EndsSeen.Enqueue(id);
        var acknowledged = await ReplyAsync(socket, stream, connection, HostileStep.EndOfData, "250 2.0.0 Ok: queued as HOSTILE\r\n", onNormal: () => EndsAcknowledged.Enqueue(id));
        content.SetLength(0);
        return acknowledged;
    }

    private static string MessageIdOf(MemoryStream content)
    {
        var text = Encoding.Latin1.GetString(content.GetBuffer(), 0, (int)content.Length);
        foreach (var header in text.Split("\r\n"))
        {
            if (header.StartsWith("Message-Id: ", StringComparison.OrdinalIgnoreCase))
            {
                return header["Message-Id: ".Length..];
            }

            if (header.Length == 0)
            {
                break;
            }
        }

        return "(none)";
    }

    private async Task<bool> ReadDataAsync(LineReader reader, MemoryStream content)
    {
        while (true)
        {
            var line = await reader.ReadLineAsync(_stop.Token);
            if (line is null)
            {
                return false;
            }

            if (line == ".")
            {
                return true;
            }

            var bytes = Encoding.Latin1.GetBytes(line.StartsWith('.') ? line[1..] : line);
            content.Write(bytes);
            content.Write("\r\n"u8);
        }
    }

    /// <summary>Sends the normal reply or the step's misbehaviour; false when the connection is over.</summary>
    private async Task<bool> ReplyAsync(Socket socket, Stream stream, int connection, HostileStep step, string normal, Action? onNormal = null, HostileAction? action = null)
    {
        action ??= Fault(connection, step);
        switch (action?.Kind)
        {
            case null:
                // Recorded before the reply is written, as an MTA commits before it answers: a client that has read the
                // reply must find it recorded (after the write, the client could be done and checking first).
                onNormal?.Invoke();
                return await WriteAsync(stream, normal);
            case HostileKind.PerByte:
                onNormal?.Invoke();
                foreach (var b in Encoding.Latin1.GetBytes(normal))
                {
                    await stream.WriteAsync(new[] { b }, _stop.Token);
                    await stream.FlushAsync(_stop.Token);
                }

                return true;
            case HostileKind.Raw:
                if (action.Positive)
                {
                    onNormal?.Invoke();
                }

                if (await WriteAsync(stream, action.Bytes))
                {
                    if (action.CloseAfter)
                    {
                        socket.Shutdown(SocketShutdown.Both);
                        socket.Close();
                        return false;
                    }

                    return !action.SilentAfter || await ReplyAsync(socket, stream, connection, step, normal, action: new HostileAction(HostileKind.Silent));
                }

                return false;
            case HostileKind.Reset:
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
                return false;
            case HostileKind.Close:
                socket.Shutdown(SocketShutdown.Both);
                socket.Close();
                return false;
            default:
                var sink = new byte[4096];
                Interlocked.Increment(ref _silent);
                try
                {
                    while (await stream.ReadAsync(sink, _stop.Token) > 0)
                    {
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _silent);
                }

                return false;
        }
    }

    private async Task<bool> WriteAsync(Stream stream, string text)
    {
        try
        {
            await stream.WriteAsync(Encoding.Latin1.GetBytes(text), _stop.Token);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Buffered reading of CRLF lines (Latin-1) and raw byte counts.</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public async Task<string?> ReadLineAsync(CancellationToken ct)
        {
            var line = new MemoryStream();
            while (true)
            {
                for (var i = _start; i < _end; i++)
                {
                    if (_buffer[i] == '\n')
                    {
                        line.Write(_buffer, _start, i - _start);
                        _start = i + 1;
                        var text = Encoding.Latin1.GetString(line.GetBuffer(), 0, (int)line.Length);
                        return text.EndsWith('\r') ? text[..^1] : text;
                    }
                }

                line.Write(_buffer, _start, _end - _start);
                _start = _end = 0;
                var read = await stream.ReadAsync(_buffer, ct);
                if (read == 0)
                {
                    return null;
                }

                _end = read;
            }
        }

        public async Task<byte[]?> ReadBytesAsync(int count, CancellationToken ct)
        {
            var result = new byte[count];
            var filled = 0;
            while (filled < count)
            {
                if (_start == _end)
                {
                    _start = 0;
                    _end = await stream.ReadAsync(_buffer, ct);
                    if (_end == 0)
                    {
                        return null;
                    }
                }

                var take = Math.Min(count - filled, _end - _start);
                Array.Copy(_buffer, _start, result, filled, take);
                (_start, filled) = (_start + take, filled + take);
            }

            return result;
        }
    }
}
