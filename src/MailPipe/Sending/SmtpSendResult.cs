namespace MailPipe;

/// <summary>What became of a message handed to <c>SendAsync</c>.</summary>
public enum SmtpSendOutcome
{
    /// <summary>The final reply was 2yz: the server took responsibility for the message (RFC 5321 §4.1.1.4). Some recipients may still have been refused: see <see cref="SmtpSendResult.RefusedRecipients"/>.</summary>
    Accepted,

    /// <summary>The sender, every recipient, or the message was refused; the replies say whether transiently (4yz) or permanently (5yz).</summary>
    Refused,

    /// <summary>The send failed before the end of data was written (or was not attempted): nothing can have been delivered; safe to retry. <see cref="SmtpSendResult.Exception"/> says why.</summary>
    NotSent,

    /// <summary>The connection was lost after the end of data was written and before its reply arrived (or its reply could not be trusted: a reply nobody asked for, such as a 421 announcing the close, came right after it): the message may have been delivered. Retrying risks a duplicate.</summary>
    Unknown,
}

/// <summary>One recipient's fate in a mail transaction.</summary>
/// <param name="Recipient">The recipient as given in the envelope.</param>
/// <param name="Reply">The reply to its RCPT command, or <see langword="null"/> when none arrived (the command was not sent, or the connection was lost first).</param>
/// <exception cref="ArgumentNullException"><paramref name="Recipient"/> is null.</exception>
public sealed record SmtpRecipientResult(SmtpRecipient Recipient, SmtpReply? Reply)
{
    /// <summary>The recipient as given in the envelope.</summary>
    public SmtpRecipient Recipient { get; init; } = Recipient ?? throw new ArgumentNullException(nameof(Recipient));

    /// <summary>Whether RCPT got a 2yz reply (250 or 251).</summary>
    public bool Accepted => Reply is { IsPositiveCompletion: true };
}

/// <summary>
/// The result of one mail transaction: the reply to MAIL, each recipient's reply, the final reply and the outcome.
/// It never lies: <see cref="SmtpSendOutcome.Unknown"/> is reported whenever delivery cannot be ruled out.
/// </summary>
public sealed partial class SmtpSendResult
{
    internal SmtpSendResult(SmtpEnvelope envelope, SmtpSendOutcome outcome, SmtpReply? mailReply, IReadOnlyList<SmtpRecipientResult> recipients, SmtpReply? dataReply, SmtpReply? finalReply, Exception? exception)
    {
        Envelope = envelope;
        Outcome = outcome;
        MailReply = mailReply;
        Recipients = recipients;
        DataReply = dataReply;
        FinalReply = finalReply;
        Exception = exception;
    }

    /// <summary>The envelope that was sent.</summary>
    public SmtpEnvelope Envelope { get; }

    /// <summary>What became of the message.</summary>
    public SmtpSendOutcome Outcome { get; }

    /// <summary>The reply to MAIL FROM, or <see langword="null"/> when none arrived.</summary>
    public SmtpReply? MailReply { get; }

    /// <summary>Each recipient's reply, in envelope order.</summary>
    public IReadOnlyList<SmtpRecipientResult> Recipients { get; }

    /// <summary>The recipients whose RCPT got 2yz.</summary>
    public IEnumerable<SmtpRecipient> AcceptedRecipients => Recipients.Where(static r => r.Accepted).Select(static r => r.Recipient);

    /// <summary>The recipients whose RCPT got a negative reply or none.</summary>
    public IEnumerable<SmtpRecipientResult> RefusedRecipients => Recipients.Where(static r => !r.Accepted);

    /// <summary>The reply to DATA (354 or a refusal), or with CHUNKING the first negative reply to a non-final BDAT; <see langword="null"/> otherwise.</summary>
    public SmtpReply? DataReply { get; }

    /// <summary>The reply to the end of data (the final dot, or BDAT LAST), or <see langword="null"/> when none arrived.</summary>
    public SmtpReply? FinalReply { get; }

    /// <summary>
    /// Why the outcome is <see cref="SmtpSendOutcome.NotSent"/> or <see cref="SmtpSendOutcome.Unknown"/>: an
    /// <see cref="SmtpException"/> (transport failure, protocol violation, timeout, 421, a check before sending, a
    /// failed content source) or an <see cref="OperationCanceledException"/> (the message's own token of
    /// <see cref="SmtpMessage.WithCancellation"/>, or the call's cancellation); <see langword="null"/> otherwise.
    /// </summary>
    public Exception? Exception { get; }

    /// <summary>Whether the message was accepted.</summary>
    public bool IsAccepted => Outcome == SmtpSendOutcome.Accepted;

    /// <summary>
    /// Whether sending the same message again later could succeed: a refusal whose deciding reply is transient (4yz:
    /// the reply to MAIL when it was refused, else those of the recipients when all were refused (every one of them 4yz
    /// or none: one 5yz among them makes the refusal permanent, as the same envelope would be refused again), else the refusal of
    /// DATA or of a BDAT chunk, else the final reply), or <see cref="SmtpSendOutcome.NotSent"/> with a transient exception. Never true for <see cref="SmtpSendOutcome.Unknown"/>.
    /// </summary>
    public bool IsTransientFailure => Outcome switch
    {
        SmtpSendOutcome.NotSent => Exception is SmtpException { IsTransient: true },
        SmtpSendOutcome.Refused => IsTransientRefusal(),
        _ => false,
    };

    /// <summary>
    /// The first refusal decides: a refused MAIL, else every recipient refused, else the reply to the data. With
    /// PIPELINING the replies to what followed (503 or 554 to DATA, a reply to a lone dot) only follow from it.
    /// </summary>
    private bool IsTransientRefusal()
    {
        if (MailReply is { IsNegative: true } mail)
        {
            return mail.IsTransientNegative;
        }

        if (!Recipients.Any(static r => r.Accepted))
        {
            return Recipients.All(static r => r.Reply is null || r.Reply.IsTransientNegative);
        }

        // A refused BDAT chunk comes before the final reply, which only follows from it.
        return (DataReply is { IsNegative: true } ? DataReply : FinalReply) is { IsTransientNegative: true };
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Outcome}: {AcceptedRecipients.Count()} of {Recipients.Count} recipient(s) accepted; final reply {FinalReply?.ToString() ?? "none"}"
        + Exception switch
        {
            null => string.Empty,
            SmtpException smtp => $"; {smtp.ErrorCode}: {smtp.Message}",
            _ => $"; {Exception.GetType().Name}: {Exception.Message}",
        };
}
