namespace MailPipe;

/// <summary>The replies of one mail transaction as they arrive, filled in order by whoever reads the replies.</summary>
internal sealed class MailTransaction
{
    public MailTransaction(SmtpMessage message)
    {
        Message = message;
        RecipientReplies = new SmtpReply?[message.Envelope.Recipients.Count];
    }

    public SmtpMessage Message { get; }

    public SmtpEnvelope Envelope => Message.Envelope;

    public SmtpReply? MailReply { get; set; }

    public SmtpReply?[] RecipientReplies { get; }

    /// <summary>The reply to DATA, or the first negative reply to a non-final BDAT.</summary>
    public SmtpReply? DataReply { get; set; }

    public SmtpReply? FinalReply { get; set; }

    /// <summary>Set before the bytes of the end of data go to the network: from then on a lost connection means Unknown.</summary>
    public bool EndOfDataWritten { get; set; }

    /// <summary>Why the transaction was not attempted (a check before any byte was written).</summary>
    public SmtpException? NotAttempted { get; set; }

    /// <summary>Why the content could not be sent (the caller's stream failed); the transaction was reset.</summary>
    public SmtpException? ContentFailure { get; set; }

    /// <summary>Completed when the reply the writer waits for has arrived (DATA's reply, or the final reply), or when replies stop.</summary>
    public TaskCompletionSource? Ready { get; set; }

    public int AcceptedRecipientCount
    {
        get
        {
            var count = 0;
            foreach (var reply in RecipientReplies)
            {
                if (reply is { IsPositiveCompletion: true })
                {
                    count++;
                }
            }

            return count;
        }
    }

    public bool AllRecipientRepliesIn => Array.TrueForAll(RecipientReplies, static r => r is not null);

    /// <summary>The result; <paramref name="failure"/> is why replies stopped, if they did.</summary>
    public SmtpSendResult ToResult(SmtpException? failure)
    {
        var recipients = new SmtpRecipientResult[RecipientReplies.Length];
        for (var i = 0; i < recipients.Length; i++)
        {
            recipients[i] = new SmtpRecipientResult(Envelope.Recipients[i], RecipientReplies[i]);
        }

        SmtpSendOutcome outcome;
        SmtpException? exception = null;
        if ((NotAttempted ?? ContentFailure) is { } notSent)
        {
            outcome = SmtpSendOutcome.NotSent;
            exception = notSent;
        }
        else if (FinalReply is not null)
        {
            outcome = FinalReply.IsPositiveCompletion && AcceptedRecipientCount > 0 ? SmtpSendOutcome.Accepted : SmtpSendOutcome.Refused;
        }
        else if (MailReply is { IsNegative: true }
            || (AllRecipientRepliesIn && AcceptedRecipientCount == 0)
            || (DataReply is { IsNegative: true } && failure is null))
        {
            outcome = SmtpSendOutcome.Refused;
        }
        else if (failure is null)
        {
            // Nothing failed, yet no final reply: the transaction stopped at a refused DATA.
            outcome = DataReply is { IsNegative: true } ? SmtpSendOutcome.Refused : SmtpSendOutcome.NotSent;
        }
        else
        {
            var serverClosed = failure.ErrorCode == SmtpErrorCode.ConnectionClosed && failure.Data.Contains(ServiceClosingKey);
            outcome = EndOfDataWritten && !serverClosed ? SmtpSendOutcome.Unknown : SmtpSendOutcome.NotSent;
            exception = failure;
        }

        return new SmtpSendResult(Envelope, outcome, MailReply, recipients, DataReply, FinalReply, exception);
    }

    /// <summary>Marks the exception that stands for "the server sent 421 and closed": replies after it were never processed.</summary>
    internal const string ServiceClosingKey = "MailPipe.ServiceClosing";
}
