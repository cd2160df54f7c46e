namespace MailPipe;

/// <summary>
/// How <see cref="AsyncSmtpSession.ConnectAsync(string, int, SmtpTlsMode, string, CancellationToken)"/> protects the
/// connection. There is deliberately no default in that method: the caller names the mode.
/// </summary>
public enum SmtpTlsMode
{
    /// <summary>No TLS: everything, including AUTH, travels in clear text. For loopback and test servers only.</summary>
    None = 0,

    /// <summary>Implicit TLS (RFC 8314 §3.3, submission port 465): TLS starts right after TCP connects, before the greeting.</summary>
    Implicit = 1,

    /// <summary>
    /// STARTTLS is required (RFC 3207): when the EHLO reply lacks STARTTLS, or the server refuses it, the connection is
    /// closed and <see cref="SmtpException"/> (<see cref="SmtpErrorCode.StartTlsNotOffered"/>) is thrown; nothing is
    /// sent after EHLO in clear text (no silent downgrade).
    /// </summary>
    StartTlsRequired = 2,

    /// <summary>
    /// Opportunistic STARTTLS: used when offered, otherwise the session goes on in clear text. An active attacker can
    /// strip the STARTTLS keyword, so this mode protects against passive eavesdropping only; it is never a default.
    /// A failed handshake still throws (MailPipe never falls back to clear text after a TLS failure).
    /// </summary>
    StartTlsWhenAvailable = 3,
}
