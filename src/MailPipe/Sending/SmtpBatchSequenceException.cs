namespace MailPipe;

/// <summary>
/// The asynchronous sequence of messages given to
/// <see cref="AsyncSmtpSession.SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/> threw while the
/// batch was being sent (the caller's own failure: a database read, a template, a file). <see cref="Exception.InnerException"/>
/// is the sequence's exception, unchanged; <see cref="Results"/> holds one result per message taken from the sequence
/// before it threw, in order: those transactions were finished (never left half-sent, RFC 5321 §4.1.1.4) and keep their
/// outcome, so that a caller who sends again can leave out the messages the server accepted.
/// </summary>
/// <remarks>
/// A cancellation from the sequence is not wrapped: it ends the call as a cancellation does
/// (<see cref="SmtpBatchCanceledException"/>). The session stays usable unless the connection failed meanwhile.
/// Every member of the sequence counts: <c>GetAsyncEnumerator</c>, <c>MoveNextAsync</c>, <c>Current</c> and
/// <c>DisposeAsync</c>; a throw from <c>DisposeAsync</c> after the call already ended for another reason (an earlier
/// throw of the sequence, a bad message, a cancellation) is dropped in favour of that first reason.
/// </remarks>
public sealed class SmtpBatchSequenceException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="results">One result per message taken from the sequence, in order.</param>
    /// <param name="innerException">What the sequence threw.</param>
    /// <exception cref="ArgumentNullException"><paramref name="results"/> or <paramref name="innerException"/> is null.</exception>
    public SmtpBatchSequenceException(IReadOnlyList<SmtpSendResult> results, Exception innerException)
        : base(Describe(innerException), innerException)
    {
        ArgumentNullException.ThrowIfNull(results);
        Results = results;
    }

    /// <summary>One result per message taken from the sequence before it threw, in order.</summary>
    public IReadOnlyList<SmtpSendResult> Results { get; }

    private static string Describe(Exception innerException)
    {
        ArgumentNullException.ThrowIfNull(innerException);
        return $"The message sequence threw while the batch was being sent; the messages taken before were finished (never left half-sent) and Results holds the outcome of each: {innerException.Message}";
    }
}
