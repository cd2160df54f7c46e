namespace MailPipe;

/// <summary>
/// The stable <see cref="Microsoft.Extensions.Logging.EventId"/> numbers MailPipe logs with, so that log pipelines
/// can filter on them. 1000-1099: protocol transcript; 1100-1199: session life cycle.
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
}
