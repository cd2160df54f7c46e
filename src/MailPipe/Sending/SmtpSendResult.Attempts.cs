namespace MailPipe;

/// <summary>The number of attempts behind a result (issue #12: a retry merges its attempts into one result).</summary>
public sealed partial class SmtpSendResult
{
    /// <summary>
    /// How many mail transactions this result stands for: 1 for a single send; 2 for a message the shared sender sent
    /// once more on a fresh connection (up to 4 when the connections it was left behind on were sessions the server
    /// ended at a limit, <see cref="SmtpSenderOptions.RetryOnFreshConnection"/>); for a result merged by a retry (MailPipe.Resilience), the number of attempts,
    /// each recipient's reply being that of the attempt that decided it.
    /// </summary>
    public int Attempts { get; private init; } = 1;

    /// <summary>A copy of this result that says it took <paramref name="attempts"/> attempts (for a retry loop, and for applications' tests).</summary>
    /// <param name="attempts">At least 1.</param>
    /// <returns>The copy; every reply, the outcome and the exception are the same objects.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="attempts"/> is less than 1.</exception>
    public SmtpSendResult WithAttempts(int attempts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempts, 1);
        return new SmtpSendResult(Envelope, Outcome, MailReply, Recipients, DataReply, FinalReply, Exception) { Attempts = attempts };
    }
}
