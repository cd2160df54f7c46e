using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>What a <see cref="SessionLimitServer"/> does when a session has taken its limit of messages.</summary>
public enum SessionLimit
{
    /// <summary>MAIL gets <c>452 4.5.3 Too many recipients: Too many messages sent</c> (OpenSMTPD's max-mails); the session stays open.</summary>
    MailRefused452,

    /// <summary>MAIL gets <c>421 4.7.0 Too many messages in this connection</c> and the connection is closed (Exim's smtp_accept_max_per_connection).</summary>
    ServiceClosing421,

    /// <summary>The next end of data is never answered: the connection is closed (that message's outcome is unknown to the client).</summary>
    CloseAfterEndOfData,

    /// <summary>MAIL and RCPT are accepted, DATA gets <c>421 4.3.2 Shutting down</c> and the connection is closed (nothing of the message was sent).</summary>
    DataClosing421,

    /// <summary>MAIL is accepted, RCPT gets <c>421 4.3.2 Shutting down</c> and the connection is closed.</summary>
    RecipientClosing421,
}

/// <summary>
/// A loopback SMTP server (PIPELINING, ENHANCEDSTATUSCODES) that takes any number of connections, one after the other
/// or at once, and limits what one session may carry to <c>perSession</c> messages. It records every end of data it
/// read and every message it accepted, with the connection's number, so that a test can count what arrived.
/// </summary>
internal sealed class SessionLimitServer : ScriptedServer
{
    private readonly SessionLimit _limit;
    private readonly int _perSession;
    private readonly Func<int, bool> _refuseGreeting;
    private readonly bool _pipelining;
    private int _refusedMails;

    /// <param name="limit">What happens at the limit.</param>
    /// <param name="perSession">How many messages a session accepts.</param>
    /// <param name="refuseGreeting">Given a connection's number (from 1): whether it is greeted with <c>421</c> and closed.</param>
    /// <param name="pipelining">Whether EHLO offers PIPELINING (OpenSMTPD does not).</param>
    public SessionLimitServer(SessionLimit limit, int perSession, Func<int, bool>? refuseGreeting = null, bool pipelining = true)
    {
        _pipelining = pipelining;
        _limit = limit;
        _perSession = perSession;
        _refuseGreeting = refuseGreeting ?? (_ => false);
    }

    /// <summary>How many MAIL commands were refused at the limit.</summary>
    public int RefusedMails => Volatile.Read(ref _refusedMails);

    /// <summary>The Subject of every message whose end of data the server read (accepted or not), with the connection's number.</summary>
    public ConcurrentQueue<(int Connection, string Subject)> EndsOfData { get; } = new();

    /// <summary>The Subject of every message the server accepted (250 to its end of data), with the connection's number.</summary>
    public ConcurrentQueue<(int Connection, string Subject)> Accepted { get; } = new();

    protected override async Task ServeAsync(TcpClient client, int connection, CancellationToken cancellationToken)
    {
        using var _ = client;
        var stream = client.GetStream();
        await using var streamScope = stream;
        if (_refuseGreeting(connection))
        {
            await WriteAsync(stream, "421 4.3.2 limit.test too busy, try later", cancellationToken);
            return;
        }

        await WriteAsync(stream, "220 limit.test ESMTP", cancellationToken);
        var reader = new StreamReader(stream, Encoding.Latin1);
        var taken = 0;
        var transaction = false;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
            switch (verb)
            {
                case "EHLO":
                    await WriteAsync(stream, _pipelining ? "250-limit.test\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME" : "250-limit.test\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME", cancellationToken);
                    break;
                case "MAIL" when taken >= _perSession && _limit == SessionLimit.MailRefused452:
                    Interlocked.Increment(ref _refusedMails);
                    await WriteAsync(stream, "452 4.5.3 Too many recipients: Too many messages sent", cancellationToken);
                    break;
                case "MAIL" when taken >= _perSession && _limit == SessionLimit.ServiceClosing421:
                    await WriteAsync(stream, "421 4.7.0 limit.test Too many messages in this connection", cancellationToken);
                    return;
                case "MAIL":
                    transaction = true;
                    await WriteAsync(stream, "250 2.1.0 Ok", cancellationToken);
                    break;
                case "RCPT" when transaction && taken >= _perSession && _limit == SessionLimit.RecipientClosing421:
                    await WriteAsync(stream, "421 4.3.2 limit.test Shutting down", cancellationToken);
                    return;
                case "RCPT":
                    await WriteAsync(stream, transaction ? "250 2.1.5 Ok" : "503 5.5.1 Need MAIL first", cancellationToken);
                    break;
                case "DATA" when transaction && taken >= _perSession && _limit == SessionLimit.DataClosing421:
                    await WriteAsync(stream, "421 4.3.2 limit.test Shutting down", cancellationToken);
                    return;
                case "DATA" when !transaction:
                    await WriteAsync(stream, "503 5.5.1 No valid recipients", cancellationToken);
                    break;
                case "DATA":
                    await WriteAsync(stream, "354 End data with <CR><LF>.<CR><LF>", cancellationToken);
                    var subject = "?";
                    while (await reader.ReadLineAsync(cancellationToken) is { } dataLine && dataLine != ".")
                    {
                        subject = dataLine.StartsWith("Subject: ", StringComparison.Ordinal) ? dataLine["Subject: ".Length..] : subject;
                    }

                    transaction = false;
                    EndsOfData.Enqueue((connection, subject));
                    if (taken >= _perSession && _limit == SessionLimit.CloseAfterEndOfData)
                    {
                        return; // no reply: the client cannot know whether the message was taken
                    }

                    taken++;
                    Accepted.Enqueue((connection, subject));
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
