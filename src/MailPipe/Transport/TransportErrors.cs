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
