using System.Net.Sockets;

namespace MailPipe;

/// <summary>
/// A transport failure, protocol violation, TLS failure or timeout. A negative reply from the server is never an
/// <see cref="SmtpException"/>: it is returned as <see cref="SmtpReply"/>. The caller's cancellation is never an
/// <see cref="SmtpException"/>: it is <see cref="OperationCanceledException"/>.
/// </summary>
/// <remarks>After any <see cref="SmtpException"/> raised by a session operation the connection is closed and the session is disconnected; it can connect again. One exception: an <see cref="SmtpErrorCode.AuthenticationError"/> after an AUTH exchange the client cancelled with <c>*</c> (a server challenge that is not base64, or more than 16 challenges) whose <see cref="Reply"/> is a negative reply other than 421: the exchange is over and the session is still connected.</remarks>
public class SmtpException : Exception
{
    /// <summary>Creates an exception with a code whose transient-ness is the default for that code.</summary>
    /// <param name="errorCode">The platform-independent error code.</param>
    /// <param name="message">A message for a log file.</param>
    /// <param name="innerException">The underlying exception, if any.</param>
    public SmtpException(SmtpErrorCode errorCode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ErrorCode = errorCode;
        var socketException = FindSocketException(innerException);
        if (socketException is not null)
        {
            OsErrorCode = socketException.NativeErrorCode;
            SocketError = socketException.SocketErrorCode;
        }

        IsTransient = IsTransientByDefault(errorCode);
    }

    /// <summary>Creates an empty exception (for serializers and frameworks); prefer the constructor with a code.</summary>
    public SmtpException()
        : this(SmtpErrorCode.SystemError, "An SMTP transport error occurred.")
    {
    }

    /// <summary>Creates an exception with a message and <see cref="SmtpErrorCode.SystemError"/>.</summary>
    /// <param name="message">The message.</param>
    public SmtpException(string message)
        : this(SmtpErrorCode.SystemError, message)
    {
    }

    /// <summary>Creates an exception with a message, an inner exception and <see cref="SmtpErrorCode.SystemError"/>.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The underlying exception.</param>
    public SmtpException(string message, Exception innerException)
        : this(SmtpErrorCode.SystemError, message, innerException)
    {
    }

    /// <summary>The platform-independent error code (the seed's <c>ErrorCode()</c>).</summary>
    public SmtpErrorCode ErrorCode { get; }

    /// <summary>The operating system's error code (errno on Linux, WSA code on Windows), or <see langword="null"/> when the error did not come from the OS (the seed's <c>OsErrorCode()</c>).</summary>
    public int? OsErrorCode { get; }

    /// <summary>The portable socket error, when the failure came from a socket.</summary>
    public SocketError? SocketError { get; }

    /// <summary>
    /// Whether retrying later, on a new connection, could help: true for network failures, connection loss and
    /// timeouts; false for protocol violations, certificate problems and missing extensions.
    /// </summary>
    public bool IsTransient { get; init; }

    /// <summary>The server's reply behind the failure (for <see cref="SmtpErrorCode.ServiceNotAvailable"/>: the 421 or the greeting that was not 220; for the pooled sender's <see cref="SmtpErrorCode.ConnectionRefused"/> of a session the server refused: the greeting or EHLO reply that refused it, such as a 421 at its connection limit; for <see cref="SmtpErrorCode.AuthenticationError"/> after a challenge that is not base64 or too many challenges: the server's answer to the <c>*</c> that cancelled the exchange, normally 501), or <see langword="null"/>.</summary>
    public SmtpReply? Reply { get; init; }

    internal static bool IsTransientByDefault(SmtpErrorCode code) => code switch
    {
        SmtpErrorCode.SystemError or SmtpErrorCode.HostNotFound or SmtpErrorCode.ConnectionRefused
            or SmtpErrorCode.ConnectionClosed or SmtpErrorCode.TimedOut or SmtpErrorCode.ServiceNotAvailable => true,
        _ => false,
    };

    private static SocketException? FindSocketException(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socketException)
            {
                return socketException;
            }
        }

        return null;
    }
}

/// <summary>The server broke the SMTP protocol (malformed or unexpected reply, limit exceeded, STARTTLS response injection).</summary>
public sealed class SmtpProtocolException : SmtpException
{
    /// <summary>Creates a protocol exception.</summary>
    /// <param name="errorCode">Usually <see cref="SmtpErrorCode.ProtocolError"/>, <see cref="SmtpErrorCode.ReplyTooLong"/> or <see cref="SmtpErrorCode.StartTlsResponseInjection"/>.</param>
    /// <param name="message">What was wrong, for a log file.</param>
    public SmtpProtocolException(SmtpErrorCode errorCode, string message)
        : base(errorCode, message)
    {
    }

    /// <summary>Creates a protocol exception with <see cref="SmtpErrorCode.ProtocolError"/>.</summary>
    /// <param name="message">What was wrong.</param>
    public SmtpProtocolException(string message)
        : base(SmtpErrorCode.ProtocolError, message)
    {
    }

    /// <summary>Creates a protocol exception with <see cref="SmtpErrorCode.ProtocolError"/>.</summary>
    public SmtpProtocolException()
        : base(SmtpErrorCode.ProtocolError, "The server broke the SMTP protocol.")
    {
    }

    /// <summary>Creates a protocol exception with <see cref="SmtpErrorCode.ProtocolError"/> and an inner exception.</summary>
    /// <param name="message">What was wrong.</param>
    /// <param name="innerException">The cause.</param>
    public SmtpProtocolException(string message, Exception innerException)
        : base(SmtpErrorCode.ProtocolError, message, innerException)
    {
    }
}
