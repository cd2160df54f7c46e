using System.Net.Sockets;
using System.Security.Authentication;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace MailPipe.Resilience;

/// <summary>
/// Classifies SMTP replies, send results and exceptions as transient, permanent or of unknown outcome, for Polly
/// predicates (the way <c>HttpClientResiliencePredicates</c> classifies HTTP). A custom pipeline that resends whole
/// messages uses <see cref="IsTransient(Outcome{SmtpSendResult})"/>; the retry of this package
/// (<see cref="SmtpRetryStrategyOptions"/>) also resends to the recipients refused transiently by an accepted message.
/// </summary>
/// <remarks>
/// <para><b>Unknown is never transient.</b> A message whose end of data was written without a reply may have been
/// delivered: <see cref="SmtpSendOutcome.Unknown"/>, <see cref="SmtpOutcomeUnknownException"/> (a send cancelled
/// after its end of data) and a <see cref="TimeoutRejectedException"/> or <see cref="OperationCanceledException"/>
/// whose inner exceptions hold one, classify as <see cref="SmtpFailureKind.Unknown"/>: the twin of
/// <c>DisableForUnsafeHttpMethods</c>, the default here.</para>
/// <para>The table (RFC 5321 §4.2.1 for replies; RFC 3463 for 4.7.x):</para>
/// <list type="table">
/// <listheader><term>what</term><description>kind</description></listheader>
/// <item><term>connection refused or closed, host not found, socket error, <see cref="SmtpErrorCode.TimedOut"/>, <see cref="TimeoutException"/>, <see cref="TimeoutRejectedException"/> before the end of data, <see cref="BrokenCircuitException"/></term><description>Transient</description></item>
/// <item><term><see cref="SmtpErrorCode.TlsHandshakeFailed"/> caused by an I/O or socket failure (the connection dropped during the handshake)</term><description>Transient</description></item>
/// <item><term>421 or <see cref="SmtpErrorCode.ServiceNotAvailable"/>; any 4yz reply (454 to AUTH, 450/451/452 to RCPT, 4.7.x rate limits)</term><description>Transient</description></item>
/// <item><term><see cref="SmtpErrorCode.AuthenticationError"/> marked <see cref="SmtpException.IsTransient"/>: a credentials or token provider's own I/O failed (HTTP without a status, 408, 429 or 5xx; a timeout, I/O or socket error; no return within <see cref="SmtpTimeouts.Reply"/>; see <see cref="SmtpSenderOptions.CredentialsProvider"/>). Not counted by the circuit breaker.</term><description>Transient</description></item>
/// <item><term>5yz reply (535 to AUTH included); <see cref="SmtpErrorCode.ProtocolError"/>, <see cref="SmtpErrorCode.ReplyTooLong"/>, STARTTLS injection</term><description>Permanent</description></item>
/// <item><term><see cref="SmtpErrorCode.BadCertificate"/>, <see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.TlsHandshakeFailed"/> by an <see cref="AuthenticationException"/> (TLS version or cipher mismatch)</term><description>Permanent</description></item>
/// <item><term><see cref="SmtpErrorCode.ContentNotReplayable"/>, <see cref="SmtpErrorCode.ContentReadFailed"/>, <see cref="SmtpErrorCode.MessageTooLarge"/>, <see cref="SmtpErrorCode.ExtensionNotSupported"/>, <see cref="SmtpErrorCode.StartTlsNotOffered"/></term><description>Permanent</description></item>
/// <item><term><see cref="SmtpSendOutcome.Unknown"/>, <see cref="SmtpOutcomeUnknownException"/> (also inside <see cref="TimeoutRejectedException"/>)</term><description>Unknown</description></item>
/// </list>
/// </remarks>
public static class SmtpResiliencePredicates
{
    /// <summary>Classifies a reply: 2yz and 3yz none, 4yz transient (421, 454 and 4.7.x included), 5yz permanent (RFC 5321 §4.2.1).</summary>
    /// <param name="reply">The reply.</param>
    /// <returns>The kind.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="reply"/> is null.</exception>
    public static SmtpFailureKind Classify(SmtpReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        return reply.Code switch
        {
            >= 400 and < 500 => SmtpFailureKind.Transient,
            >= 500 => SmtpFailureKind.Permanent,
            _ => SmtpFailureKind.None,
        };
    }

    /// <summary>
    /// Classifies a whole result: accepted none; <see cref="SmtpSendOutcome.Unknown"/> unknown; not sent by its
    /// exception; refused by its deciding reply (the refused MAIL, else the recipients' replies when all were refused,
    /// else the refusal of the data), as <see cref="SmtpSendResult.IsTransientFailure"/> decides.
    /// </summary>
    /// <param name="result">The result.</param>
    /// <returns>The kind.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="result"/> is null.</exception>
    public static SmtpFailureKind Classify(SmtpSendResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Outcome switch
        {
            SmtpSendOutcome.Accepted => SmtpFailureKind.None,
            SmtpSendOutcome.Unknown => SmtpFailureKind.Unknown,
            SmtpSendOutcome.NotSent => result.Exception is { } exception ? Classify(exception) : SmtpFailureKind.Transient,
            _ => result.IsTransientFailure ? SmtpFailureKind.Transient : SmtpFailureKind.Permanent,
        };
    }

    /// <summary>Classifies an exception (see the table of <see cref="SmtpResiliencePredicates"/>); inner exceptions are looked through for the unknown case.</summary>
    /// <param name="exception">The exception.</param>
    /// <returns>The kind.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="exception"/> is null.</exception>
    public static SmtpFailureKind Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (IsOutcomeUnknown(exception))
        {
            return SmtpFailureKind.Unknown;
        }

        return exception switch
        {
            SmtpException smtp => Classify(smtp),
            TimeoutRejectedException or TimeoutException or BrokenCircuitException => SmtpFailureKind.Transient,
            OperationCanceledException => SmtpFailureKind.Canceled,
            SocketException or IOException => SmtpFailureKind.Transient,
            _ => SmtpFailureKind.Permanent,
        };
    }

    /// <summary>Whether a reply is transient (4yz).</summary>
    /// <param name="reply">The reply.</param>
    /// <returns><see langword="true"/> for 4yz.</returns>
    public static bool IsTransient(SmtpReply reply) => Classify(reply) == SmtpFailureKind.Transient;

    /// <summary>Whether sending the whole message again later may succeed without delivering it twice (never for an accepted message or an unknown outcome).</summary>
    /// <param name="result">The result.</param>
    /// <returns><see langword="true"/> when <see cref="Classify(SmtpSendResult)"/> is <see cref="SmtpFailureKind.Transient"/>.</returns>
    public static bool IsTransient(SmtpSendResult result) => Classify(result) == SmtpFailureKind.Transient;

    /// <summary>Whether an exception is a transient failure (never an unknown outcome, never the caller's cancellation).</summary>
    /// <param name="exception">The exception.</param>
    /// <returns><see langword="true"/> when <see cref="Classify(Exception)"/> is <see cref="SmtpFailureKind.Transient"/>.</returns>
    public static bool IsTransient(Exception exception) => Classify(exception) == SmtpFailureKind.Transient;

    /// <summary>
    /// The predicate of a custom Polly pipeline that resends whole messages: a transient result or a transient
    /// exception; never an accepted message, an unknown outcome or a cancellation.
    /// </summary>
    /// <param name="outcome">The outcome of one attempt.</param>
    /// <returns>Whether to retry.</returns>
    public static bool IsTransient(Outcome<SmtpSendResult> outcome) =>
        outcome.Exception is { } exception ? IsTransient(exception) : outcome is { Result: { } result } && IsTransient(result);

    /// <summary>
    /// Whether the message may have been delivered although no positive final reply arrived: an
    /// <see cref="SmtpOutcomeUnknownException"/>, or an <see cref="SmtpBatchCanceledException"/> with an unknown
    /// result, found in <paramref name="exception"/> or its inner exceptions (Polly's
    /// <see cref="TimeoutRejectedException"/> keeps the cancellation it turned into a timeout as its inner exception).
    /// </summary>
    /// <param name="exception">The exception.</param>
    /// <returns>Whether the outcome is unknown.</returns>
    public static bool IsOutcomeUnknown(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SmtpOutcomeUnknownException:
                    return true;
                case SmtpBatchCanceledException batch when batch.Results.Any(static r => r.Outcome == SmtpSendOutcome.Unknown):
                    return true;
                case AggregateException aggregate when aggregate.InnerExceptions.Any(IsOutcomeUnknown):
                    return true;
            }
        }

        return false;
    }

    /// <summary>Whether an attempt's outcome is unknown: a result with <see cref="SmtpSendOutcome.Unknown"/>, or an exception that <see cref="IsOutcomeUnknown(Exception)"/> finds.</summary>
    /// <param name="outcome">The outcome of one attempt.</param>
    /// <returns>Whether the message may have been delivered.</returns>
    public static bool IsOutcomeUnknown(Outcome<SmtpSendResult> outcome) =>
        outcome.Exception is { } exception ? IsOutcomeUnknown(exception) : outcome is { Result.Outcome: SmtpSendOutcome.Unknown };

    /// <summary>
    /// Whether a reply asks the client to slow down: 421 (the service is closing the channel, RFC 5321 §3.8) or an
    /// enhanced status code 4.7.x (RFC 3463 §3.8, security or policy status, such as 450 4.7.1 rate limited). The
    /// retry waits longer after one (<see cref="SmtpRetryStrategyOptions.ThrottledDelay"/>).
    /// </summary>
    /// <param name="reply">The reply.</param>
    /// <returns>Whether it is a 421 or a 4.7.x reply.</returns>
    public static bool IsThrottling(SmtpReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        return reply.Code == 421 || (reply.IsTransientNegative && reply.EnhancedStatusCode is { Class: 4, Subject: 7 });
    }

    /// <summary>Whether a result holds a 421 or a 4.7.x reply (to MAIL, a recipient, DATA or the end of data; or the one behind its exception, such as the 421 greeting of a server at its connection limit that the pooled sender reports as <see cref="SmtpErrorCode.ConnectionRefused"/>), or an <see cref="SmtpErrorCode.ServiceNotAvailable"/> failure.</summary>
    /// <param name="result">The result.</param>
    /// <returns>Whether the server asked the client to slow down.</returns>
    public static bool IsThrottling(SmtpSendResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return (result.MailReply is { } mail && IsThrottling(mail))
            || result.Recipients.Any(static r => r.Reply is { } reply && IsThrottling(reply))
            || (result.DataReply is { } data && IsThrottling(data))
            || (result.FinalReply is { } final && IsThrottling(final))
            || (result.Exception is SmtpException { ErrorCode: SmtpErrorCode.ServiceNotAvailable })
            || (result.Exception is SmtpException { Reply: { } refusal } && IsThrottling(refusal));
    }

    /// <summary>
    /// Whether an attempt failed because of the server or the path to it, which is what a circuit breaker per server
    /// counts: a transient exception, a message not sent for a transient reason, a 421, and an unknown outcome that
    /// the server or the path caused (the connection lost or the reply timed out after the end of data, an attempt
    /// timeout after it): never resent, but a server that takes content and does not answer is failing. A mailbox's
    /// 4yz or 5yz refusal is not a server failure, nor is an unknown outcome of the caller's cancellation or of disposal,
    /// nor a failure of the client's own credentials or token provider (an <see cref="SmtpErrorCode.AuthenticationError"/>
    /// caused by an exception that is not an <see cref="SmtpException"/>, such as the secret store's
    /// <c>HttpRequestException</c>): retried when transient, but the server did nothing wrong.
    /// </summary>
    /// <param name="outcome">The outcome of one attempt.</param>
    /// <returns>Whether it counts against the server.</returns>
    public static bool IsServerFailure(Outcome<SmtpSendResult> outcome)
    {
        if (outcome.Exception is { } exception)
        {
            return exception is not BrokenCircuitException && !IsCredentialSourceFailure(exception)
                && (Classify(exception) == SmtpFailureKind.Transient || (exception is TimeoutRejectedException && IsOutcomeUnknown(exception)));
        }

        return outcome is { Result: { } result }
            && ((result.Outcome == SmtpSendOutcome.NotSent && result.Exception is { } failure && Classify(failure) == SmtpFailureKind.Transient && !IsCredentialSourceFailure(failure))
                || (result.Outcome == SmtpSendOutcome.Unknown && result.Exception is SmtpException { InnerException: not OperationCanceledException } lost && Classify(lost) == SmtpFailureKind.Transient)
                || (result.MailReply?.Code == 421)
                || (result.FinalReply?.Code == 421)
                || (result.Exception is SmtpException { ErrorCode: SmtpErrorCode.ServiceNotAvailable }));
    }

    /// <summary>
    /// A connection that could not authenticate because the client's credentials or token provider failed (the
    /// pool's <see cref="SmtpErrorCode.AuthenticationError"/> around the provider's exception), not because of a reply.
    /// </summary>
    private static bool IsCredentialSourceFailure(Exception exception) =>
        exception is SmtpException { ErrorCode: SmtpErrorCode.AuthenticationError, InnerException: { } cause } && cause is not SmtpException;

    private static SmtpFailureKind Classify(SmtpException exception) => exception.ErrorCode switch
    {
        SmtpErrorCode.ServiceNotAvailable => SmtpFailureKind.Transient,
        SmtpErrorCode.TlsHandshakeFailed => IsHandshakeIoFailure(exception) ? SmtpFailureKind.Transient : SmtpFailureKind.Permanent,
        SmtpErrorCode.BadCertificate or SmtpErrorCode.BadCertificateName or SmtpErrorCode.ContentNotReplayable
            or SmtpErrorCode.ProtocolError or SmtpErrorCode.ReplyTooLong or SmtpErrorCode.StartTlsResponseInjection => SmtpFailureKind.Permanent,
        _ => exception.IsTransient || exception.Reply is { IsTransientNegative: true } ? SmtpFailureKind.Transient : SmtpFailureKind.Permanent,
    };

    /// <summary>
    /// A handshake that failed because the connection failed (the server closed it, a reset, a socket timeout) rather
    /// than because the two ends disagreed: an I/O or socket failure inside, and no <see cref="AuthenticationException"/>
    /// (which is how .NET reports a version, cipher or certificate mismatch).
    /// </summary>
    private static bool IsHandshakeIoFailure(SmtpException exception)
    {
        var io = false;
        for (var e = exception.InnerException; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case AuthenticationException:
                    return false;
                case IOException or SocketException or TimeoutException:
                    io = true;
                    break;
            }
        }

        return io;
    }
}
