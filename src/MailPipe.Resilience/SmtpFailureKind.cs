namespace MailPipe.Resilience;

/// <summary>
/// How <see cref="SmtpResiliencePredicates"/> classifies a reply, a result or an exception for a retry: the SMTP twin
/// of the transient/permanent split of <c>Microsoft.Extensions.Http.Resilience</c>.
/// </summary>
public enum SmtpFailureKind
{
    /// <summary>No failure: a positive reply (2yz, 3yz) or an accepted message.</summary>
    None,

    /// <summary>
    /// Trying again later may succeed and cannot deliver twice: connection failures, timeouts before the end of data,
    /// I/O failures during the TLS handshake, 421 (<see cref="SmtpErrorCode.ServiceNotAvailable"/>), any 4yz reply
    /// (454 to AUTH and 4.7.x rate limits included).
    /// </summary>
    Transient,

    /// <summary>
    /// Trying again fails the same way: 5yz replies (to AUTH too), protocol violations, certificate failures, TLS
    /// version or cipher mismatch, a missing extension, <see cref="SmtpErrorCode.ContentNotReplayable"/>.
    /// </summary>
    Permanent,

    /// <summary>
    /// The end of data was written and its reply never came (<see cref="SmtpSendOutcome.Unknown"/>,
    /// <see cref="SmtpOutcomeUnknownException"/>, also inside Polly's <c>TimeoutRejectedException</c>): the message
    /// may have been delivered, so a retry may deliver it twice. Never retried unless the caller opts in.
    /// </summary>
    Unknown,

    /// <summary>The caller cancelled before the end of data was written (a plain <see cref="OperationCanceledException"/>): not a failure to retry.</summary>
    Canceled,
}
