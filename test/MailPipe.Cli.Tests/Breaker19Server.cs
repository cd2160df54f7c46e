using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A loopback SMTP server for the reconnect breaker tests: any number of connections, each served by the same script
/// that may differ by connection number (greeting, EHLO keywords, STARTTLS, DATA and BDAT), with a hook at each step. It
/// records each complete end of data (DATA's dot or BDAT LAST) with the connection's number and the message's Subject.
/// </summary>
internal sealed class Breaker19Server : ScriptedServer
{
    /// <summary>The greeting of a connection (by number, from 1); <see langword="null"/> closes it without one.</summary>
    public Func<int, string?> Greeting { get; init; } = _ => "220 brk19.test ESMTP";

    /// <summary>The EHLO keywords of a connection (by number, and whether TLS is on), after the first line; one item of the form "554 text" is the whole reply to EHLO and HELO.</summary>
    public Func<int, bool, string[]> Keywords { get; init; } = (_, _) => ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"];

    /// <summary>The certificate for STARTTLS, when a connection's keywords offer it.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>
    /// Answers a command other than EHLO, STARTTLS, DATA, BDAT and QUIT: given the connection's number, how many ends of
    /// data it read, and the line; <see langword="null"/> closes the connection without a reply.
    /// </summary>
    public Func<int, int, string, string?> OnCommand { get; init; } = (_, _, line) => line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? "250 2.1.5 Ok" : "250 2.1.0 Ok";

    /// <summary>
    /// After 354, before the content is read: given the connection's number and the ends of data it read so far, a
    /// reply to send at once (then the connection is closed; empty: closed without one), or <see langword="null"/> to read the content.
    /// </summary>
    public Func<int, int, string?> MidData { get; init; } = (_, _) => null;

    /// <summary>The reply to an end of data (DATA's dot, BDAT LAST): connection, ends of data before it, Subject; <see langword="null"/> closes the connection (as a 421 does, after it).</summary>
    public Func<int, int, string, string?> OnEndOfData { get; init; } = (connection, count, _) => $"250 2.0.0 Ok: queued as {connection}.{count + 1}";

    /// <summary>A non-last BDAT chunk was read: connection, ends of data so far, chunks of this message so far; whether to close the connection without a reply.</summary>
    public Func<int, int, int, bool> CloseAfterChunk { get; init; } = (_, _, _) => false;

    /// <summary>The reply to a non-last BDAT chunk: connection, ends of data so far, chunks of this message so far; <see langword="null"/> for the usual 250 (a 421 closes the connection after it).</summary>
    public Func<int, int, int, string?> ChunkReply { get; init; } = (_, _, _) => null;

    /// <summary>Called after each line of DATA content read: the connection and the octets of this message read so far.</summary>
    public Action<int, long> DataRead { get; init; } = (_, _) => { };

    /// <summary>Called when a connection is accepted, before its greeting.</summary>
    public Action<int> OnConnect { get; init; } = _ => { };

    /// <summary>Each end of data read: the connection and the Subject.</summary>
    public ConcurrentQueue<(int Connection, string Subject)> EndsOfData { get; } = new();

    /// <summary>Each end of data read: the Subject and the octets of the content (a dot-stuffed line counted with its dot).</summary>
    public ConcurrentQueue<(string Subject, long Octets)> Octets { get; } = new();

    /// <summary>Each connection's TLS state when its first MAIL came: (connection, encrypted).</summary>
    public ConcurrentQueue<(int Connection, bool Tls)> MailTls { get; } = new();

    protected override async Task ServeAsync(TcpClient client, int connection, CancellationToken cancellationToken)
    {
        using var _ = client;
        OnConnect(connection);
        Stream stream = client.GetStream();
        var line = new LineReader(stream);
        if (Greeting(connection) is not { } greeting)
        {
            return;
        }

        await WriteAsync(stream, greeting, cancellationToken);
        if (!greeting.StartsWith("220", StringComparison.Ordinal))
        {
            return;
        }

        var tls = false;
        var ends = 0;
        var chunks = 0;
        var mailSeen = false;
        var subject = "?";
        var chunkData = new MemoryStream();
        while (await line.ReadLineAsync(cancellationToken) is { } command)
        {
            var verb = (command.Length >= 4 ? command[..4] : command).ToUpperInvariant();
            switch (verb)
            {
                case "EHLO" or "HELO" when Keywords(connection, tls) is [var whole] && whole.Length > 3 && whole[3] == ' ':
                    await WriteAsync(stream, whole, cancellationToken); // a whole reply ("554 5.7.1 go away"), not keywords
                    break;
                case "HELO":
                    await WriteAsync(stream, "250 brk19.test", cancellationToken);
                    break;
                case "EHLO":
                    var keywords = Keywords(connection, tls);
                    await WriteAsync(stream, string.Join("\r\n", new[] { "brk19.test" }.Concat(keywords).Select((k, i) => (i == keywords.Length ? "250 " : "250-") + k)), cancellationToken);
                    break;
                case "STAR":
                    await WriteAsync(stream, "220 2.0.0 Ready to start TLS", cancellationToken);
                    var ssl = new SslStream(stream);
                    await ssl.AuthenticateAsServerAsync(Certificate!, false, false);
                    stream = ssl;
                    line = new LineReader(ssl);
                    tls = true;
                    break;
                case "DATA":
                    await WriteAsync(stream, "354 End data with <CR><LF>.<CR><LF>", cancellationToken);
                    if (MidData(connection, ends) is { } mid)
                    {
                        await line.ReadBytesAsync(1024, cancellationToken);
                        if (mid.Length > 0)
                        {
                            await WriteAsync(stream, mid, cancellationToken);
                        }

                        return;
                    }

                    subject = "?";
                    long octets = 0;
                    string? dataLine;
                    while ((dataLine = await line.ReadLineAsync(cancellationToken)) is not null && dataLine != ".")
                    {
                        octets += dataLine.Length + 2;
                        DataRead(connection, octets);
                        subject = dataLine.StartsWith("Subject: ", StringComparison.Ordinal) && subject == "?" ? dataLine["Subject: ".Length..] : subject;
                    }

                    if (dataLine is null)
                    {
                        return; // the connection ended before the end of data
                    }

                    EndsOfData.Enqueue((connection, subject));
                    Octets.Enqueue((subject, octets));
                    if (OnEndOfData(connection, ends++, subject) is not { } dataReply)
                    {
                        return;
                    }

                    await WriteAsync(stream, dataReply, cancellationToken);
                    if (dataReply.StartsWith("421", StringComparison.Ordinal))
                    {
                        return; // the server closing the channel (RFC 5321 §3.8)
                    }

                    break;
                case "BDAT":
                    var parts = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    var size = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                    var last = parts.Length > 2 && parts[2].Equals("LAST", StringComparison.OrdinalIgnoreCase);
                    var chunk = await line.ReadBytesAsync(size, cancellationToken);
                    if (chunk.Length < size)
                    {
                        return; // the connection ended inside the chunk
                    }

                    chunkData.Write(chunk);
                    chunks++;
                    if (!last)
                    {
                        if (CloseAfterChunk(connection, ends, chunks))
                        {
                            return;
                        }

                        var chunkReply = ChunkReply(connection, ends, chunks) ?? $"250 2.0.0 {size} octets received";
                        await WriteAsync(stream, chunkReply, cancellationToken);
                        if (chunkReply.StartsWith("421", StringComparison.Ordinal))
                        {
                            return;
                        }

                        break;
                    }

                    var text = Encoding.Latin1.GetString(chunkData.ToArray());
                    var at = text.IndexOf("\r\nSubject: ", StringComparison.Ordinal);
                    subject = at < 0 ? "?" : text[(at + 11)..text.IndexOf('\r', at + 2)];
                    Octets.Enqueue((subject, chunkData.Length));
                    chunkData.SetLength(0);
                    chunks = 0;
                    EndsOfData.Enqueue((connection, subject));
                    if (OnEndOfData(connection, ends++, subject) is not { } bdatReply)
                    {
                        return;
                    }

                    await WriteAsync(stream, bdatReply, cancellationToken);
                    if (bdatReply.StartsWith("421", StringComparison.Ordinal))
                    {
                        return;
                    }

                    break;
                case "QUIT":
                    await WriteAsync(stream, "221 2.0.0 Bye", cancellationToken);
                    return;
                default:
                    if (verb == "MAIL" && !mailSeen)
                    {
                        mailSeen = true;
                        MailTls.Enqueue((connection, tls));
                    }

                    if (OnCommand(connection, ends, command) is not { } reply)
                    {
                        return;
                    }

                    await WriteAsync(stream, reply, cancellationToken);
                    if (reply.StartsWith("421", StringComparison.Ordinal))
                    {
                        return;
                    }

                    break;
            }
        }
    }

    /// <summary>Lines and counted bytes from a stream, with its own buffer (so that BDAT's octets follow their command exactly).</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        public async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
        {
            var line = new MemoryStream();
            while (true)
            {
                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    line.Write(_buffer, _start, lf - _start);
                    _start = lf + 1;
                    var bytes = line.ToArray();
                    return Encoding.Latin1.GetString(bytes, 0, bytes.Length > 0 && bytes[^1] == '\r' ? bytes.Length - 1 : bytes.Length);
                }

                line.Write(_buffer, _start, _end - _start);
                if (!await FillAsync(cancellationToken))
                {
                    return null;
                }
            }
        }

        public async Task<byte[]> ReadBytesAsync(int count, CancellationToken cancellationToken)
        {
            var result = new MemoryStream();
            while (result.Length < count)
            {
                if (_start == _end && !await FillAsync(cancellationToken))
                {
                    break;
                }

                var take = Math.Min(count - (int)result.Length, _end - _start);
                result.Write(_buffer, _start, take);
                _start += take;
            }

            return result.ToArray();
        }

        private async Task<bool> FillAsync(CancellationToken cancellationToken)
        {
            _start = 0;
            _end = 0;
            try
            {
                _end = await stream.ReadAsync(_buffer, cancellationToken);
            }
            catch (IOException)
            {
                return false;
            }

            return _end > 0;
        }
    }
}
