namespace MailPipe;

/// <summary>
/// A message taken from an asynchronous sequence given to
/// <see cref="AsyncSmtpSession.SendBatchAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/> was invalid (a null
/// message, or envelope parameters holding CR, LF or NUL); messages taken before it (if any) may have been sent.
/// <see cref="Exception.InnerException"/> is the check's own <see cref="ArgumentException"/>; <see cref="Results"/> holds one
/// result per message taken from the sequence, in order: the transactions written before the bad message were finished
/// (never left half-sent) and keep their outcome, the bad message is <see cref="SmtpSendOutcome.NotSent"/> with the
/// same exception (a null message has no result), and messages after it were not taken from the sequence.
/// </summary>
/// <remarks>
/// Derived from <see cref="ArgumentException"/>, so code that catches bad input alike keeps working; code that must not
/// send a message twice reads <see cref="Results"/> before sending again.
/// </remarks>
public sealed class SmtpBatchArgumentException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="results">One result per message taken from the sequence, in order.</param>
    /// <param name="innerException">The exception of the check that refused the message.</param>
    /// <exception cref="ArgumentNullException"><paramref name="results"/> or <paramref name="innerException"/> is null.</exception>
    public SmtpBatchArgumentException(IReadOnlyList<SmtpSendResult> results, ArgumentException innerException)
        : base(Describe(innerException), innerException)
    {
        ArgumentNullException.ThrowIfNull(results);
        Results = results;
    }

    /// <summary>One result per message taken from the sequence, in order; the last one is the invalid message's (NotSent), unless the sequence yielded null.</summary>
    public IReadOnlyList<SmtpSendResult> Results { get; }

    /// <summary>The parameter named by the check that refused the message.</summary>
    public override string? ParamName => (InnerException as ArgumentException)?.ParamName;

    private static string Describe(ArgumentException innerException)
    {
        ArgumentNullException.ThrowIfNull(innerException);
        // The check's message last: it ends with the parameter's name ("(Parameter 'messages')"), which this exception does
        // not add again (ParamName is the inner exception's).
        return $"A message taken from the sequence was invalid; the ones taken before it were finished (never left half-sent) and Results holds the outcome of each message taken: {innerException.Message}";
    }
}
