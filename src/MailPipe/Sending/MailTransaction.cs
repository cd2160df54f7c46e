using System.Diagnostics;
using MailPipe.Sending;

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

    /// <summary>
    /// Set before the bytes of the end of data go to the network: from then on a lost connection means Unknown. Cleared
    /// again when the connection is closed before any flush began after it (the end was only ever in the output buffer).
    /// </summary>
    public bool EndOfDataWritten { get; set; }

    /// <summary>
    /// A reply to the end of data was received but not filed: the channel withheld it (another reply, such as an
    /// unsolicited 421, followed it unasked, so it may answer some other command). The server may have the message.
    /// </summary>
    public bool EndOfDataAnswerWithheld { get; set; }

    /// <summary>
    /// Why the sender stopped the transaction itself (<see cref="TransactionStop.None"/> until it does; set only by
    /// <see cref="Stop"/>), and the exception its result carries: one field each, to keep the object small.
    /// </summary>
    private TransactionStop _stop;

    private Exception? _stopException;

    /// <summary>
    /// Not attempted, or cancelled by its own token while its content was written: nothing of it is delivered, and it
    /// is not the call's last checked transaction (a content failure is).
    /// </summary>
    public bool IsWithdrawn => _stop is TransactionStop.NotAttempted or TransactionStop.Cancelled;

    /// <summary>
    /// The one place the sender records why it stopped the transaction (<see cref="TransactionStop.NotAttempted"/>,
    /// <see cref="TransactionStop.Cancelled"/> or <see cref="TransactionStop.ContentFailed"/>) with the exception of its
    /// result. A content failure never replaces a withdrawal; nothing is recorded once the end of data was written (the
    /// server may have the message: the replies and the call's failure decide).
    /// </summary>
    public void Stop(TransactionStop reason, Exception exception)
    {
        Debug.Assert(reason is TransactionStop.NotAttempted or TransactionStop.Cancelled or TransactionStop.ContentFailed);
        if (EndOfDataWritten || (reason == TransactionStop.ContentFailed && IsWithdrawn))
        {
            return;
        }

        (_stop, _stopException) = (reason, exception);
    }

    /// <summary>
    /// Its MAIL was refused right after a refused RSET (<see cref="TransactionStop.OutOfStep"/>): NotSent with
    /// <paramref name="exception"/>, even once its end of data was written (no transaction took it), unless the sender
    /// already stopped it (a withdrawal or a content failure says more).
    /// </summary>
    public void StopOutOfStep(SmtpException exception)
    {
        if (_stop == TransactionStop.None)
        {
            (_stop, _stopException) = (TransactionStop.OutOfStep, exception);
        }
    }

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

    /// <summary>Whether MAIL's reply and every RCPT's reply have been filed (the envelope is decided).</summary>
    public bool EnvelopeRepliesIn => MailReply is not null && AllRecipientRepliesIn;

    /// <summary>
    /// Forgets the replies to MAIL, the RCPTs and DATA of a transaction the server ran none of (Haraka's 503 to commands
    /// pipelined behind an end of data), so that the writer can write it again. Only while the writer is not done with
    /// it (its result is not out) and every reply expected for it is filed.
    /// </summary>
    public void ForgetEnvelopeReplies()
    {
        Debug.Assert(!_writerDone && Volatile.Read(ref _unfiledReplies) == 0, "replies are still due, or the result may be out");
        MailReply = null;
        DataReply = null;
        Array.Clear(_recipients);
        _ready = null;
        if (_stop == TransactionStop.OutOfStep)
        {
            // Its MAIL's refusal followed a refused RSET (Haraka refuses both behind an end of data): written again, the new replies decide.
            (_stop, _stopException) = (TransactionStop.None, null);
        }
    }

    /// <summary>Files the reply to the RCPT of recipient <paramref name="index"/>.</summary>
    public void SetRecipientReply(int index, SmtpReply reply) => _recipients[index] = new SmtpRecipientResult(Envelope.Recipients[index], reply);

    /// <summary>
    /// Why the transaction stopped: the sender's own stop if it made one, else read from the replies and from
    /// <paramref name="failure"/> (why the call stopped, if it did): a reply is never read as a refusal once a protocol
    /// violation stopped the call after the end of data went out (those filed may belong to other commands).
    /// </summary>
    public TransactionStop StopReason(Exception? failure)
    {
        if (_stop != TransactionStop.None)
        {
            return _stop;
        }

        // Every recipient refused (and MAIL too, or not), then the server closed: the reply to the end of data was withheld
        // behind its unasked 221/421 (Postfix's submission port without STARTTLS: 530 to each, then 221 "I can break
        // rules, too"). No mail transaction had a recipient, so nothing can have been delivered; it was Unknown. Not
        // after a protocol violation (the replies filed may belong to other commands), and only when every envelope
        // reply is negative (a stray reply before them would put MAIL's 250 in a recipient's place).
        var accepted = AcceptedRecipientCount;
        if (FinalReply is null && failure is not SmtpProtocolException && accepted == 0 && AllRecipientRepliesIn && Refusal(accepted) is { } refused)
        {
            return refused;
        }

        if ((failure is SmtpProtocolException || EndOfDataAnswerWithheld) && FinalReply is null && EndOfDataWritten)
        {
            return TransactionStop.ProtocolViolation;
        }

        if (FinalReply is not null)
        {
            return FinalReply.IsPositiveCompletion && accepted > 0 ? TransactionStop.None : Refusal(accepted) ?? TransactionStop.MessageRefused;
        }

        if (Refusal(accepted) is { } refusal)
        {
            return refusal;
        }

        if (DataReply is { IsNegative: true } && failure is null)
        {
            return TransactionStop.DataRefused;
        }

        return failure switch
        {
            null => TransactionStop.Abandoned,
            SmtpException { ErrorCode: SmtpErrorCode.ServiceNotAvailable } => TransactionStop.ServiceClosing,
            SmtpProtocolException => TransactionStop.ProtocolViolation,
            SmtpException { ErrorCode: SmtpErrorCode.TimedOut } => TransactionStop.Timeout,
            OperationCanceledException => TransactionStop.CallCancelled,
            _ => TransactionStop.ConnectionLost,
        };
    }

    /// <summary>
    /// The outcome of a transaction stopped for <paramref name="stop"/>: never Accepted without an acknowledged end;
    /// Unknown when the replies stopped (a failure, or the call ended) after the end of data was written and before its
    /// reply (after a 421 the server processed nothing more).
    /// </summary>
    public static SmtpSendOutcome OutcomeOf(TransactionStop stop, bool endOfDataWritten) => stop switch
    {
        TransactionStop.None => SmtpSendOutcome.Accepted,
        TransactionStop.MailRefused or TransactionStop.NoRecipientAccepted or TransactionStop.DataRefused or TransactionStop.MessageRefused => SmtpSendOutcome.Refused,
        TransactionStop.Abandoned or TransactionStop.ProtocolViolation or TransactionStop.Timeout or TransactionStop.CallCancelled or TransactionStop.ConnectionLost when endOfDataWritten => SmtpSendOutcome.Unknown,
        _ => SmtpSendOutcome.NotSent,
    };

    /// <summary>The result; <paramref name="failure"/> is why replies stopped, if they did (see <see cref="StopReason"/>).</summary>
    public SmtpSendResult ToResult(Exception? failure)
    {
        // This send's run of the message's content writer (SmtpMessage.FromWriter), if any, is done with.
        Message.WriterRun?.Release();
        // Another send of the same non-seekable stream or pipe reader may begin (and finds it read, or not read yet).
        Message.ReleaseOnePassSource(this);

        var stop = StopReason(failure);
        var outcome = OutcomeOf(stop, EndOfDataWritten);
        var exception = stop switch
        {
            TransactionStop.NotAttempted or TransactionStop.Cancelled or TransactionStop.ContentFailed or TransactionStop.OutOfStep => _stopException,
            >= TransactionStop.ServiceClosing => failure,
            _ => null,
        };

        // The recipients without a reply get their results now; the array is the result's from here on (one result per transaction).
        var recipients = _recipients;
        for (var i = 0; i < recipients.Length; i++)
        {
            recipients[i] ??= new SmtpRecipientResult(Envelope.Recipients[i], null);
        }

        return StopTelemetry(new SmtpSendResult(Envelope, outcome, MailReply, recipients!, DataReply, FinalReply, exception));
    }

    /// <summary>A refusal read from MAIL's and the RCPTs' replies, if any.</summary>
    private TransactionStop? Refusal(int accepted) =>
        MailReply is { IsNegative: true } ? TransactionStop.MailRefused
        : AllRecipientRepliesIn && accepted == 0 ? TransactionStop.NoRecipientAccepted
        : null;

    private static TaskCompletionSource CompletedSource()
    {
        var source = new TaskCompletionSource();
        source.SetResult();
        return source;
    }
}
