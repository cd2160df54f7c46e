namespace MailPipe;

/// <summary>
/// A send was cancelled after its end of data (the final dot, or <c>BDAT LAST</c>) had been written and before the
/// final reply arrived: the server may have taken the message, so it must not be sent again blindly.
/// <see cref="Result"/> has <see cref="SmtpSendOutcome.Unknown"/> and every reply received so far.
/// </summary>
/// <remarks>
/// Derived from <see cref="OperationCanceledException"/>: code that treats any cancellation alike keeps working; a
/// retry policy that must not duplicate a message checks for this type first. A send cancelled before its end of data
/// throws a plain <see cref="OperationCanceledException"/>: nothing of it can have been delivered.
/// </remarks>
public sealed class SmtpOutcomeUnknownException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="result">The result of the cancelled send, with <see cref="SmtpSendOutcome.Unknown"/>.</param>
    /// <param name="innerException">The cancellation.</param>
    /// <param name="cancellationToken">The token that was cancelled.</param>
    public SmtpOutcomeUnknownException(SmtpSendResult result, Exception? innerException, CancellationToken cancellationToken)
        : base("The send was cancelled after its end of data was written: the server may have accepted the message (outcome Unknown); the connection was closed.", innerException, cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(result);
        Result = result;
    }

    /// <summary>The result of the cancelled send: <see cref="SmtpSendOutcome.Unknown"/>, with the replies to MAIL and the recipients received before the cancellation.</summary>
    public SmtpSendResult Result { get; }
}

/// <summary>
/// A batch send (<c>SendBatchAsync</c>, <c>SendBatchStreamingAsync</c>) was cancelled. <see cref="Results"/> holds one
/// result per message taken from the batch so far, in order: the transactions already decided keep their outcome
/// (Accepted or Refused), those whose end of data was written are <see cref="SmtpSendOutcome.Unknown"/>, the rest
/// <see cref="SmtpSendOutcome.NotSent"/>. Retry only the messages whose outcome says so; messages after the last result
/// were not taken from the batch.
/// </summary>
public sealed class SmtpBatchCanceledException : OperationCanceledException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="results">One result per message taken from the batch, in order.</param>
    /// <param name="innerException">The cancellation.</param>
    /// <param name="cancellationToken">The token that was cancelled.</param>
    public SmtpBatchCanceledException(IReadOnlyList<SmtpSendResult> results, Exception? innerException, CancellationToken cancellationToken)
        : base("The batch send was cancelled; the connection was closed. Results holds the outcome of every message taken from the batch so far.", innerException, cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(results);
        Results = results;
    }

    /// <summary>One result per message taken from the batch before the cancellation, in order.</summary>
    public IReadOnlyList<SmtpSendResult> Results { get; }
}
