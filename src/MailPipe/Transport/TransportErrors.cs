using System.Net.Sockets;

namespace MailPipe.Transport;

/// <summary>What a failure of the socket or stream means, as MailPipe's platform-independent <see cref="SmtpErrorCode"/>.</summary>
internal static class TransportErrors
{
    /// <summary>The error code for a failure of a connect, a read or a write (not a timeout or a cancellation of ours: the caller tells those apart first).</summary>
    /// <param name="exception">The exception the transport threw.</param>
    /// <returns>The code: from the socket error when there is one, else <see cref="SmtpErrorCode.ConnectionClosed"/> for a closed stream, else <see cref="SmtpErrorCode.SystemError"/>.</returns>
    public static SmtpErrorCode Classify(Exception exception) => FindSocketError(exception) switch
    {
        SocketError.ConnectionRefused => SmtpErrorCode.ConnectionRefused,
        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => SmtpErrorCode.HostNotFound,
        SocketError.TimedOut => SmtpErrorCode.TimedOut,
        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown or SocketError.NotConnected
            or SocketError.OperationAborted or SocketError.Disconnecting => SmtpErrorCode.ConnectionClosed,
        null when exception is IOException or ObjectDisposedException or OperationCanceledException => SmtpErrorCode.ConnectionClosed,
        _ => SmtpErrorCode.SystemError,
    };

    /// <summary>A few words for the code, to start an exception message.</summary>
    /// <param name="code">The code.</param>
    /// <returns>The words.</returns>
    public static string Describe(SmtpErrorCode code) => code switch
    {
        SmtpErrorCode.ConnectionRefused => "Connection refused",
        SmtpErrorCode.HostNotFound => "Host not found",
        SmtpErrorCode.TimedOut => "Timed out",
        SmtpErrorCode.ConnectionClosed => "Connection closed",
        _ => "Network error",
    };

    /// <summary>
    /// A failure's messages, outermost first, on one line: .NET's own is often only "Authentication failed, see inner
    /// exception." (a handshake) or "The decryption operation failed, see inner exception." (a TLS alert read after the
    /// handshake, such as TLS 1.3's certificate_required from a server that refused the client certificate), while the
    /// reason (the server's TLS alert, OpenSSL's error) is in the inner ones, which a log line, a health check or the
    /// CLI does not show. A message already part of an outer one (a socket error inside an IOException's) is left out.
    /// </summary>
    /// <param name="exception">The failure.</param>
    /// <returns>The messages joined with ": ", ending with a full stop.</returns>
    public static string Reason(Exception exception)
    {
        var parts = new List<string>();
        for (var current = exception; current is not null; current = current.InnerException)
        {
            var message = string.Join(' ', current.Message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).TrimEnd('.');
            if (message.Length > 0
                && !message.EndsWith("see inner exception", StringComparison.OrdinalIgnoreCase)
                && !parts.Exists(part => part.Contains(message, StringComparison.Ordinal)))
            {
                parts.Add(message);
            }
        }

        return parts.Count == 0 ? exception.Message : string.Join(": ", parts) + ".";
    }

    private static SocketError? FindSocketError(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException socketException)
            {
                return socketException.SocketErrorCode;
            }
        }

        return null;
    }
}
