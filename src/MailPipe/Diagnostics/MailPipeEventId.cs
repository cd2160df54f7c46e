namespace MailPipe;

/// <summary>
/// The stable <see cref="Microsoft.Extensions.Logging.EventId"/> numbers MailPipe logs with, so that log pipelines
/// can filter on them. 1000-1099: protocol transcript; 1100-1199: session life cycle; 1200-1299: the shared sender's pool (<see cref="SmtpSender"/>);
/// 1300-1399: a sender's settings, checked when it is made by MailPipe.Extensions.DependencyInjection (category <c>MailPipe.Configuration</c>).
/// </summary>
public static class MailPipeEventId
{
    /// <summary>A line the client sent (<c>C: …</c>), at Trace. Addresses are masked unless <see cref="SmtpSessionOptions.LogAddresses"/>; AUTH data is always redacted; message data is never logged.</summary>
    public const int ClientLine = 1000;

    /// <summary>A line the server sent (<c>S: …</c>), at Trace.</summary>
    public const int ServerLine = 1001;

    /// <summary>Message data was sent (its size only), at Trace.</summary>
    public const int MessageData = 1002;

    /// <summary>Connecting to a server, at Debug.</summary>
    public const int Connecting = 1100;

    /// <summary>The connection is open, at Debug.</summary>
    public const int Connected = 1101;

    /// <summary>The connection was closed by the client in an orderly way, at Debug.</summary>
    public const int Disconnected = 1102;

    /// <summary>The connection was broken by a failure, timeout or cancellation, at Debug (the exception reaches the caller).</summary>
    public const int ConnectionBroken = 1103;

    /// <summary>TLS is active, at Debug.</summary>
    public const int TlsEstablished = 1104;

    /// <summary>The pool opened a connection, at Debug.</summary>
    public const int PoolConnectionOpened = 1200;

    /// <summary>The pool could not open a connection (the waiting messages get NotSent), at Warning.</summary>
    public const int PoolConnectionOpenFailed = 1201;

    /// <summary>The pool closed a connection (idle, lifetime, broken, stale, ...), at Debug.</summary>
    public const int PoolConnectionDiscarded = 1202;

    /// <summary>A message is sent again on a fresh connection after the one it was on failed before anything of it could be delivered (once, or up to four attempts in all after sessions a server ended at a limit: <see cref="SmtpSenderOptions.RetryOnFreshConnection"/>), at Debug.</summary>
    public const int PoolRetry = 1203;

    /// <summary>A connection in use was lost (broken, timed out, or closed by the server with 421) and is replaced, at Warning. Not logged when MailPipe closed it for a caller's sake (a cancellation, or content that failed or was refused midway with DATA).</summary>
    public const int PoolConnectionLost = 1204;

    /// <summary>
    /// The part of the pool's disposal that runs after <see cref="SmtpSender.Dispose"/> returns (or that
    /// <see cref="SmtpSender.DisposeAsync"/> awaits) failed unexpectedly (a bug), at Error; the disposal still ends.
    /// </summary>
    public const int PoolDisposalFailed = 1205;

    /// <summary>
    /// The port and the TLS mode disagree with the usual convention (RFC 8314 §3.3: 465 is implicit TLS; 587, submission
    /// per RFC 6409, and 25 start in clear text with STARTTLS), at Warning, once per sender when it is made: such a
    /// connection usually waits until its connect or reply timeout. Only a warning, since a server may be set up otherwise.
    /// </summary>
    public const int PortTlsModeMismatch = 1300;
}
