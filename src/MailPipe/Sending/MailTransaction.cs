namespace MailPipe;

/// <summary>The replies of one mail transaction as they arrive, filled in order by whoever reads the replies.</summary>
internal sealed partial class MailTransaction
{
    public MailTransaction(SmtpMessage message)
    {
        Message = message;
        _recipients = new SmtpRecipientResult?[message.Envelope.Recipients.Count];
    }

    /// <summary>
    /// The message; before MAIL (<see cref="SmtpMessage.BeginSend"/>) one made with <see cref="SmtpMessage.ForConnection"/>
    /// is replaced by the message it chose for this connection, and one made with <see cref="SmtpMessage.FromWriter"/> by
    /// a copy that reads this send's run of its writer.
    /// </summary>
    public SmtpMessage Message { get; set; }

    public SmtpEnvelope Envelope => Message.Envelope;

    public SmtpReply? MailReply { get; set; }

    /// <summary>
    /// Each recipient's result, made when its reply arrives (null until then): the very array the result hands out,
    /// so that a transaction keeps no array of replies beside it.
    /// </summary>
    private readonly SmtpRecipientResult?[] _recipients;

    public int RecipientCount => _recipients.Length;

    /// <summary>The reply to DATA, or the first negative reply to a non-final BDAT.</summary>
    public SmtpReply? DataReply { get; set; }

    public SmtpReply? FinalReply { get; set; }

    /// <summary>Set before the bytes of the end of data go to the network: from then on a lost connection means Unknown.</summary>
    public bool EndOfDataWritten { get; set; }

    /// <summary>Why the transaction was not attempted (a check before any byte was written, or the message's own cancellation).</summary>
    public Exception? NotAttempted
    {
        get => _contentFailed ? null : _notSent;
        set => (_notSent, _contentFailed) = (value, false);
    }

    /// <summary>
    /// <see cref="NotAttempted"/> or, when <see cref="_contentFailed"/>, <see cref="ContentFailure"/>: one field for
    /// both (a transaction has at most one reason not to be sent; the one not attempted wins), to keep the object small.
    /// </summary>
    private Exception? _notSent;

    private bool _contentFailed;

    /// <summary>Replies expected for this transaction and not filed yet (written by the writer, filed by whoever reads).</summary>
    private int _unfiledReplies;

    /// <summary>Set when the writer will write nothing more for this transaction.</summary>
    private volatile bool _writerDone;

    /// <summary>A reply to one of this transaction's commands is expected (called in the call that writes the command).</summary>
    public void ExpectReply() => Interlocked.Increment(ref _unfiledReplies);

    /// <summary>One of the expected replies was filed.</summary>
    public void ReplyFiled() => Interlocked.Decrement(ref _unfiledReplies);

    /// <summary>The writer is done with this transaction.</summary>
    public void WriterDone() => _writerDone = true;

    /// <summary>Whether the result can no longer change: the writer is done and every reply it expected has been filed.</summary>
    public bool IsDecided => _writerDone && Volatile.Read(ref _unfiledReplies) == 0;

    /// <summary>Why the content could not be sent (the caller's stream failed); the transaction was reset.</summary>
    public SmtpException? ContentFailure
    {
        get => _contentFailed ? (SmtpException?)_notSent : null;
        set
        {
            if (_notSent is null || _contentFailed)
            {
                (_notSent, _contentFailed) = (value, value is not null);
            }
        }
    }

    /// <summary>
    /// Stands in <see cref="_ready"/> for "ready before anyone waited": the usual case, where the writer reads the
    /// replies itself before it waits, and needs no completion source of its own.
    /// </summary>
    private static readonly TaskCompletionSource ReadyBeforeWait = CompletedSource();

    /// <summary>Null until <see cref="SetReady"/> or <see cref="WhenReady"/>, whichever comes first.</summary>
    private TaskCompletionSource? _ready;

    /// <summary>The reply the writer waits for has arrived (DATA's reply, or the final reply), or replies stopped. Safe from the concurrent reader; idempotent.</summary>
    public void SetReady() => Interlocked.CompareExchange(ref _ready, ReadyBeforeWait, null)?.TrySetResult();

    /// <summary>Completes on <see cref="SetReady"/>; a completion source is made only when the writer waits first (a concurrent reader has yet to read the reply).</summary>
    public Task WhenReady()
    {
        var ready = Volatile.Read(ref _ready);
        if (ready is null)
        {
            var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            ready = Interlocked.CompareExchange(ref _ready, created, null) ?? created;
        }

        return ready.Task;
    }

    public int AcceptedRecipientCount
    {
        get
        {
            var count = 0;
            foreach (var recipient in _recipients)
            {
                if (recipient is { Reply.IsPositiveCompletion: true })
                {
                    count++;
                }
            }

            return count;
        }
    }

    public bool AllRecipientRepliesIn => Array.TrueForAll(_recipients, static r => r?.Reply is not null);

    /// <summary>Files the reply to the RCPT of recipient <paramref name="index"/>.</summary>
    public void SetRecipientReply(int index, SmtpReply reply) => _recipients[index] = new SmtpRecipientResult(Envelope.Recipients[index], reply);

    /// <summary>The result; <paramref name="failure"/> is why replies stopped, if they did.</summary>
    public SmtpSendResult ToResult(Exception? failure)
    {
        // This send's run of the message's content writer (SmtpMessage.FromWriter), if any, is done with.
        Message.WriterRun?.Release();
        SmtpSendOutcome outcome;
        Exception? exception = null;
        if (_notSent is { } notSent)
        {
            outcome = SmtpSendOutcome.NotSent;
            exception = notSent;
        }
        else if (failure is SmtpProtocolException && FinalReply is null && EndOfDataWritten)
        {
            // The replies could no longer be matched to their commands: those filed may belong to other commands, so
            // no refusal is read from them once the end of data went out (the server may have accepted the message).
            outcome = SmtpSendOutcome.Unknown;
            exception = failure;
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
            // After a 421 the server processed nothing more: what was not acknowledged was not delivered.
            var serverClosed = failure is SmtpException { ErrorCode: SmtpErrorCode.ServiceNotAvailable };
            outcome = EndOfDataWritten && !serverClosed ? SmtpSendOutcome.Unknown : SmtpSendOutcome.NotSent;
            exception = failure;
        }

        // The recipients without a reply get their results now; the array is the result's from here on (one result per transaction).
        var recipients = _recipients;
        for (var i = 0; i < recipients.Length; i++)
        {
            recipients[i] ??= new SmtpRecipientResult(Envelope.Recipients[i], null);
        }

        return StopTelemetry(new SmtpSendResult(Envelope, outcome, MailReply, recipients!, DataReply, FinalReply, exception));
    }

    private static TaskCompletionSource CompletedSource()
    {
        var source = new TaskCompletionSource();
        source.SetResult();
        return source;
    }
}
