namespace MailPipe;

/// <summary>A snapshot of an <see cref="SmtpSender"/>'s pool (the same numbers as its metrics).</summary>
public sealed record SmtpSenderStatistics
{
    /// <summary>Connections open and idle in the pool.</summary>
    public int Idle { get; init; }

    /// <summary>Connections sending a batch.</summary>
    public int InUse { get; init; }

    /// <summary>Connections being opened (connect, TLS, EHLO, AUTH).</summary>
    public int Opening { get; init; }

    /// <summary>Messages waiting for a connection.</summary>
    public int PendingRequests { get; init; }

    /// <summary>Connections opened since the sender was created (successfully: greeting, EHLO, TLS and AUTH done).</summary>
    public long Opened { get; init; }

    /// <summary>Connection attempts that failed (connect, TLS, EHLO or AUTH); one cancelled by the sender's disposal is no failure.</summary>
    public long OpenFailures { get; init; }

    /// <summary>Connections closed since the sender was created, for any reason (see <see cref="SmtpSenderDiscardReason"/>).</summary>
    public long Discarded { get; init; }

    /// <summary>Messages handed to connections (a retried message counts twice).</summary>
    public long Messages { get; init; }

    /// <summary>Batches sent: the number of times a connection took waiting messages; far below <see cref="Messages"/> when callers are coalesced.</summary>
    public long Batches { get; init; }

    /// <summary>Protocol round trips of every connection (see <see cref="AsyncSmtpSession.RoundTrips"/>), closed ones included.</summary>
    public long RoundTrips { get; init; }

    /// <summary>Messages sent again on another connection after a NotSent failure (once, or up to four attempts in all after connections a server ended at a limit).</summary>
    public long Retries { get; init; }
}
