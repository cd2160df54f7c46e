namespace MailPipe.Sending;

/// <summary>
/// Why a transaction stopped: the one typed reason its result is derived from (<see cref="MailTransaction.OutcomeOf"/>).
/// The sender's own stops (<see cref="NotAttempted"/>, <see cref="Cancelled"/>, <see cref="ContentFailed"/>) are set
/// where it stops the transaction (<see cref="MailTransaction.Stop"/>); the others are read from the replies and from
/// why the call stopped (<see cref="MailTransaction.StopReason"/>). One byte, so that the transaction stays as small.
/// </summary>
internal enum TransactionStop : byte
{
    /// <summary>It ran to a positive final reply with at least one recipient accepted: Accepted.</summary>
    None,

    /// <summary>Nothing of it was written: a check before its first byte, or its own token before it started. NotSent.</summary>
    NotAttempted,

    /// <summary>Its own token while its content was written: never ended (BDAT: reset with RSET; DATA: the connection closed). NotSent.</summary>
    Cancelled,

    /// <summary>The caller's content source failed (or held what the server cannot take) before its end: never ended. NotSent.</summary>
    ContentFailed,

    /// <summary>
    /// MAIL was refused right after the server refused the RSET before it (which it must accept, RFC 5321 §4.1.1.5):
    /// the server was out of step with the commands written (Exim after a RSET between BDAT chunks: "503 only RSET
    /// accepted now"), so the refusal is no verdict on the message, and no transaction took it. NotSent, transient
    /// (<see cref="SmtpErrorCode.ServiceNotAvailable"/>).
    /// </summary>
    OutOfStep,

    /// <summary>MAIL was refused. Refused.</summary>
    MailRefused,

    /// <summary>Every recipient was refused (or the final reply came with none accepted). Refused.</summary>
    NoRecipientAccepted,

    /// <summary>DATA, or a BDAT chunk before the last, was refused, with nothing failing. Refused.</summary>
    DataRefused,

    /// <summary>The reply to its end of data refused it. Refused.</summary>
    MessageRefused,

    /// <summary>Its replies stopped with neither a refusal nor a failure to blame (the call ended before it ran, or before its final reply): NotSent, or Unknown once its end of data was written.</summary>
    Abandoned,

    // From here on: why the call stopped (its failure is the result's exception; ToResult relies on this order).

    /// <summary>The server closed the channel (421): it processed nothing more, so what was not acknowledged was not delivered. NotSent.</summary>
    ServiceClosing,

    /// <summary>A reply could not be matched to its command: Unknown once its end of data was written, else NotSent.</summary>
    ProtocolViolation,

    /// <summary>A send or receive deadline passed: Unknown once its end of data was written, else NotSent.</summary>
    Timeout,

    /// <summary>The call's token (not the message's own): Unknown once its end of data was written, else NotSent.</summary>
    CallCancelled,

    /// <summary>The connection failed or was closed (for another transaction's sake too): Unknown once its end of data was written, else NotSent.</summary>
    ConnectionLost,
}
