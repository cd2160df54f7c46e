namespace MailPipe.Sending;

/// <summary>
/// Takes a batch's results as they become known, in message order, on the flow that decided them (the writer or the
/// concurrent reply reader), under the batch's lock: it must be quick, must not throw and must not call back into the
/// session. The pooled sender completes its callers from here, without the channel and the enumeration of the public
/// streaming call between the reply and the caller.
/// </summary>
internal interface IBatchObserver
{
    /// <summary>One message's result, the next in order.</summary>
    void OnResult(SmtpSendResult result);
}
