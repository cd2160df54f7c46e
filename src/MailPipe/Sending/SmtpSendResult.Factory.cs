namespace MailPipe;

/// <summary>Public factories, so that applications can unit-test their retry and telemetry code with made-up results.</summary>
public sealed partial class SmtpSendResult
{
    private static readonly SmtpReply MailOk = new(250, "2.1.0 Ok");
    private static readonly SmtpReply RcptOk = new(250, "2.1.5 Ok");
    private static readonly SmtpReply QueuedOk = new(250, "2.0.0 Ok: queued");

    /// <summary>Makes any result, as the library would report it. Nothing is checked beyond nulls and the recipient count: a test may make inconsistent results on purpose.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="outcome">The outcome.</param>
    /// <param name="mailReply">The reply to MAIL FROM, or <see langword="null"/> when none arrived.</param>
    /// <param name="recipients">Each recipient's reply in envelope order; <see langword="null"/> for one per envelope recipient, with 250 when <paramref name="outcome"/> is Accepted or Refused, else no reply.</param>
    /// <param name="dataReply">The reply to DATA (or the first negative reply to a BDAT chunk), if any.</param>
    /// <param name="finalReply">The reply to the end of data, if any.</param>
    /// <param name="exception">The failure behind NotSent or Unknown.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="envelope"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="outcome"/> is not defined.</exception>
    /// <exception cref="ArgumentException"><paramref name="recipients"/> does not have one entry per envelope recipient, or has a null entry.</exception>
    public static SmtpSendResult Create(
        SmtpEnvelope envelope,
        SmtpSendOutcome outcome,
        SmtpReply? mailReply = null,
        IReadOnlyList<SmtpRecipientResult>? recipients = null,
        SmtpReply? dataReply = null,
        SmtpReply? finalReply = null,
        SmtpException? exception = null)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        if (!Enum.IsDefined(outcome))
        {
            throw new ArgumentOutOfRangeException(nameof(outcome), outcome, "Unknown outcome.");
        }

        if (recipients is not null && recipients.Count != envelope.Recipients.Count)
        {
            throw new ArgumentException("One recipient result per envelope recipient is needed.", nameof(recipients));
        }

        if (recipients is not null && recipients.Contains(null!))
        {
            throw new ArgumentException("A recipient result must not be null.", nameof(recipients));
        }

        var replied = outcome is SmtpSendOutcome.Accepted or SmtpSendOutcome.Refused;
        recipients ??= [.. envelope.Recipients.Select(r => new SmtpRecipientResult(r, replied ? RcptOk : null))];
        return new SmtpSendResult(envelope, outcome, mailReply, recipients, dataReply, finalReply, exception);
    }

    /// <summary>A message accepted for every recipient: 250 to MAIL, to each RCPT and to the end of data.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="finalReply">The reply to the end of data; default <c>250 2.0.0 Ok: queued</c>.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="envelope"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="finalReply"/> is not 2yz.</exception>
    public static SmtpSendResult Accepted(SmtpEnvelope envelope, SmtpReply? finalReply = null)
    {
        if (finalReply is { IsPositiveCompletion: false })
        {
            throw new ArgumentException("An accepted message has a 2yz final reply.", nameof(finalReply));
        }

        return Create(envelope, SmtpSendOutcome.Accepted, MailOk, null, null, finalReply ?? QueuedOk);
    }

    /// <summary>A message refused at the end of data (every recipient accepted, then a 4yz or 5yz final reply).</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="finalReply">The refusal, such as <c>451 4.3.0 try again later</c> (transient) or <c>554 5.7.1 rejected</c>.</param>
    /// <returns>The result; <see cref="IsTransientFailure"/> follows from the reply.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="envelope"/> or <paramref name="finalReply"/> is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="finalReply"/> is not 4yz or 5yz.</exception>
    public static SmtpSendResult Refused(SmtpEnvelope envelope, SmtpReply finalReply)
    {
        ArgumentNullException.ThrowIfNull(finalReply);
        if (!finalReply.IsNegative)
        {
            throw new ArgumentException("A refusal is a 4yz or 5yz reply.", nameof(finalReply));
        }

        return Create(envelope, SmtpSendOutcome.Refused, MailOk, null, null, finalReply);
    }

    /// <summary>A message that was not sent (nothing can have been delivered), such as after a failed connect.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="exception">Why, such as <c>new SmtpException(SmtpErrorCode.ConnectionRefused, "…")</c>; its <see cref="SmtpException.IsTransient"/> becomes <see cref="IsTransientFailure"/>.</param>
    /// <returns>The result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="envelope"/> or <paramref name="exception"/> is null.</exception>
    public static SmtpSendResult NotSent(SmtpEnvelope envelope, SmtpException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return Create(envelope, SmtpSendOutcome.NotSent, exception: exception);
    }

    /// <summary>A message whose end of data was written but whose reply never came: it may have been delivered.</summary>
    /// <param name="envelope">The envelope.</param>
    /// <param name="exception">Why the reply was lost, such as <c>new SmtpException(SmtpErrorCode.ConnectionClosed, "…")</c>.</param>
    /// <returns>The result (every recipient accepted, no final reply).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="envelope"/> or <paramref name="exception"/> is null.</exception>
    public static SmtpSendResult Unknown(SmtpEnvelope envelope, SmtpException exception)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(exception);
        return Create(envelope, SmtpSendOutcome.Unknown, MailOk, [.. envelope.Recipients.Select(r => new SmtpRecipientResult(r, RcptOk))], exception: exception);
    }
}
