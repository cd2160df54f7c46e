using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A loopback SMTP server (PIPELINING, ENHANCEDSTATUSCODES) with a recipient limit per transaction, as Sendmail's
/// MaxRecipientsPerMessage and Postfix's smtpd_recipient_limit: each RCPT past <c>maxRecipients</c> gets
/// <c>452 4.5.3 Too many recipients</c> (or <c>tooMany</c>). A session takes <c>perSession</c> messages at most
/// (the next MAIL gets <c>421</c> and the close), and <c>endOfData</c> may answer a transaction (numbered from 1 over the
/// server's life) with another reply, or with none (<c>""</c>: the connection is closed). Records every message it
/// accepted with its envelope's recipients.
/// </summary>
internal sealed class RecipientLimitServer : ScriptedServer
{
    private readonly int _maxRecipients;
    private readonly int _perSession;
    private readonly string _tooMany;
    private readonly Func<int, string?> _endOfData;
    private int _transactions;

    public RecipientLimitServer(int maxRecipients, int perSession = int.MaxValue, Func<int, string?>? endOfData = null, string tooMany = "452 4.5.3 Too many recipients")
    {
        _maxRecipients = maxRecipients;
        _perSession = perSession;
        _tooMany = tooMany;
        _endOfData = endOfData ?? (_ => null);
    }

    /// <summary>Every message accepted: connection, subject, the recipients of its transaction.</summary>
    public ConcurrentQueue<(int Connection, string Subject, string[] Recipients)> Accepted { get; } = new();

    /// <summary>The length of every accepted message's data as read (dot-unstuffing aside), with its subject.</summary>
    public ConcurrentQueue<(string Subject, long Length)> DataLengths { get; } = new();

    /// <summary>Every recipient of an accepted message, once per delivery.</summary>
    public string[] Deliveries(string subject) => [.. Accepted.Where(a => a.Subject == subject).SelectMany(a => a.Recipients)];

    protected override async Task ServeAsync(TcpClient client, int connection, CancellationToken cancellationToken)
    {
        using var _ = client;
        var stream = client.GetStream();
        await using var streamScope = stream;
        await WriteAsync(stream, "220 rcpt.test ESMTP", cancellationToken);
        var reader = new StreamReader(stream, Encoding.Latin1);
        var taken = 0;
        var transaction = false;
        var recipients = new List<string>();
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                    await WriteAsync(stream, "250-rcpt.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME", cancellationToken);
                    break;
                case "MAIL" when taken >= _perSession:
                    await WriteAsync(stream, "421 4.7.0 rcpt.test Too many messages in this connection", cancellationToken);
                    return;
                case "MAIL":
                    transaction = true;
                    recipients.Clear();
                    await WriteAsync(stream, "250 2.1.0 Ok", cancellationToken);
                    break;
                case "RCPT" when transaction && recipients.Count >= _maxRecipients:
                    await WriteAsync(stream, _tooMany, cancellationToken);
                    break;
                case "RCPT" when transaction:
                    var start = line.IndexOf('<', StringComparison.Ordinal);
                    recipients.Add(line[(start + 1)..line.IndexOf('>', start)]);
                    await WriteAsync(stream, "250 2.1.5 Ok", cancellationToken);
                    break;
                case "RCPT":
                    await WriteAsync(stream, "503 5.5.1 Need MAIL first", cancellationToken);
                    break;
                case "DATA" when !transaction || recipients.Count == 0:
                    await WriteAsync(stream, "554 5.5.1 No valid recipients", cancellationToken);
                    break;
                case "DATA":
                    await WriteAsync(stream, "354 End data with <CR><LF>.<CR><LF>", cancellationToken);
                    var subject = "?";
                    long length = 0;
                    while (await reader.ReadLineAsync(cancellationToken) is { } dataLine && dataLine != ".")
                    {
                        length += dataLine.Length + 2;
                        subject = dataLine.StartsWith("Subject: ", StringComparison.Ordinal) ? dataLine["Subject: ".Length..] : subject;
                    }

                    transaction = false;
                    var reply = _endOfData(Interlocked.Increment(ref _transactions));
                    if (reply == string.Empty)
                    {
                        return; // no reply: the client cannot know whether the message was taken
                    }

                    if (reply is not null)
                    {
                        await WriteAsync(stream, reply, cancellationToken);
                        break;
                    }

                    taken++;
                    DataLengths.Enqueue((subject, length));
                    Accepted.Enqueue((connection, subject, [.. recipients]));
                    await WriteAsync(stream, $"250 2.0.0 Ok: queued as {connection}.{taken}", cancellationToken);
                    break;
                case "RSET":
                    transaction = false;
                    await WriteAsync(stream, "250 2.0.0 Ok", cancellationToken);
                    break;
                case "QUIT":
                    await WriteAsync(stream, "221 2.0.0 Bye", cancellationToken);
                    return;
                default:
                    await WriteAsync(stream, "250 2.0.0 Ok", cancellationToken);
                    break;
            }
        }
    }
}
