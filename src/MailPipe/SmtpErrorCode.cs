namespace MailPipe;

/// <summary>
/// Platform-independent error codes of <see cref="SmtpException"/>: what went wrong in the transport or the protocol,
/// never what the server refused (a refusal is a returned <see cref="SmtpReply"/>). The seed's <c>Error</c> enumeration.
/// </summary>
public enum SmtpErrorCode
{
    /// <summary>An operating-system error on the socket; <see cref="SmtpException.OsErrorCode"/> has the OS code (the seed's SYSTEM_ERROR).</summary>
    SystemError = 1,

    /// <summary>The host name could not be resolved to an address.</summary>
    HostNotFound = 2,

    /// <summary>
    /// The server refused the TCP connection (nothing listens on that port); for the pooled <see cref="SmtpSender"/> also
    /// a session the server refused with its greeting or its EHLO reply (a 421 at its connection limit, a 554), that
    /// reply in <see cref="SmtpException.Reply"/>.
    /// </summary>
    ConnectionRefused = 3,

    /// <summary>The server closed the connection while a reply was expected, or a write found it closed.</summary>
    ConnectionClosed = 4,

    /// <summary>A connect, send or receive did not complete within its timeout (the seed's TIMED_OUT_ERROR).</summary>
    TimedOut = 5,

    /// <summary>The server broke the protocol: a malformed reply, a reply whose lines disagree on the code, a reply nobody asked for.</summary>
    ProtocolError = 6,

    /// <summary>A reply exceeded a limit of <see cref="SmtpProtocolLimits"/> (line length, lines per reply or bytes per reply).</summary>
    ReplyTooLong = 7,

    /// <summary>The server sent bytes after its reply to STARTTLS and before the TLS handshake: a response-injection attempt (RFC 3207 §5; CVE-2011-0411 class).</summary>
    StartTlsResponseInjection = 8,

    /// <summary>The TLS handshake failed for a reason other than the certificate's name (protocol, cipher or I/O failure).</summary>
    TlsHandshakeFailed = 9,

    /// <summary>The certificate is otherwise valid but does not name the host that was asked for (the seed's BAD_CERTIFICATE_NAME_ERROR); a caller may choose to accept it.</summary>
    BadCertificateName = 10,

    /// <summary>The certificate is not trusted: untrusted root, expired, revoked or otherwise invalid (not a name mismatch).</summary>
    BadCertificate = 11,

    /// <summary>TLS was required but the server does not offer STARTTLS: nothing further was sent (no silent downgrade).</summary>
    StartTlsNotOffered = 12,

    /// <summary>The server lacks an extension that the request needs (for example SMTPUTF8 for a non-ASCII address).</summary>
    ExtensionNotSupported = 13,

    /// <summary>An authentication mechanism could not run (not offered, not available on this platform, or a malformed challenge).</summary>
    AuthenticationError = 14,

    /// <summary>The message is larger than the server's SIZE limit (RFC 1870 §4); it was not sent (content of unknown length: stopped before its end once longer than the limit).</summary>
    MessageTooLarge = 15,

    /// <summary>Reading the caller's message content (a stream, a pipe or a content writer) failed; the message was not ended, so nothing of it can have been delivered. The inner exception is the one the stream, pipe or writer threw.</summary>
    ContentReadFailed = 16,

    /// <summary>
    /// The server said it is closing the transmission channel (RFC 5321 §3.8: 421, or a 221 nobody asked for) in
    /// reply to a command or unprompted, or refused a RSET (which it must accept) and closed the connection, or sent a
    /// greeting other than 220 (RFC 5321 §3.1); the connection was closed. Transient: a new connection may succeed later. The
    /// reply is on <see cref="SmtpException.Reply"/>. Commands after it were not processed, so what they carried was not sent.
    /// Also a message's result when the server refused a RSET and then that message's MAIL FROM (out of step with the
    /// commands written, as Exim after a RSET between BDAT chunks): the reply is the MAIL FROM's, the connection may stay open.
    /// </summary>
    ServiceNotAvailable = 17,

    /// <summary>
    /// The message's content cannot be read again: a non-seekable stream or a pipe reader that an earlier send of the
    /// same <see cref="SmtpMessage"/> already read from. Detected before MAIL: nothing was sent. Not transient (the
    /// same message fails the same way); make a new message from content that can be replayed.
    /// </summary>
    ContentNotReplayable = 18,
}
