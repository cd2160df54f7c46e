using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The pool's results: each caller completed with its own transaction's result, sent again on a fresh connection when nothing of it can have been delivered (once, or up to four attempts in all after sessions a server ended at a limit).</summary>
public sealed partial class SmtpSender
{
    /// <summary>The most attempts of one message: the one retry, and more only after a connection dropped at a session limit (<see cref="IsDroppedAtSessionLimit"/>).</summary>
    private const int MaxAttempts = 4;

    private void FailInFlight(PooledConnection connection, Func<SendRequest, SmtpSendResult> result)
    {
        List<SendRequest> rest;
        lock (_lock)
        {
            rest = [.. connection.InFlight];
            connection.InFlight.Clear();
            connection.Feeding = false;
        }

        foreach (var request in rest)
        {
            try
            {
                request.TrySetResult(result(request));
            }
            catch (InvalidOperationException ex)
            {
                request.TrySetException(ex);
            }
        }
    }

    /// <summary>Completes one message, or re-queues it for one more attempt on a fresh connection when that cannot deliver it twice or in part.</summary>
    private void Complete(PooledConnection connection, SendRequest request, SmtpSendResult result)
    {
        if (result.Outcome == SmtpSendOutcome.Accepted || (result.Outcome == SmtpSendOutcome.Refused && !IsServiceClosingRefusal(result)))
        {
            connection.Decided++;
        }
        else if (!_sessionLimitMet && !connection.Session.IsConnected && IsDroppedAtSessionLimit(connection, result))
        {
            _sessionLimitMet = true; // from now on fresh connections are held to MaxNonMailCommandsPerConnection (NonMailRoom)
        }

        if (result.Outcome is SmtpSendOutcome.NotSent or SmtpSendOutcome.Unknown && result.Exception is SmtpException failure && !connection.Session.IsConnected)
        {
            if (connection.BrokenReason is null && result.Outcome == SmtpSendOutcome.NotSent
                && (failure.ErrorCode == SmtpErrorCode.ContentReadFailed || failure.InnerException is SmtpContentRefusedException))
            {
                // Its content stopped midway with DATA (the source failed, an octet or a size the server cannot take):
                // the session closed the connection itself, never the final dot. As for a caller's cancellation, that
                // is no lost connection (no warning), and the batch takes no more messages.
                lock (_lock)
                {
                    connection.CancelledByCaller = true;
                }

                connection.BrokenReason = SmtpSenderDiscardReason.TransactionAborted; // not "broken": the network did not fail
            }

            connection.BrokenException ??= failure;
            connection.BrokenReason ??= failure.ErrorCode == SmtpErrorCode.ServiceNotAvailable
                || result.FinalReply?.IsServiceClosing == true || result.MailReply?.IsServiceClosing == true || result.DataReply?.IsServiceClosing == true
                || result.Recipients.Any(static r => r.Reply?.IsServiceClosing == true)
                ? SmtpSenderDiscardReason.ServiceClosing
                : SmtpSenderDiscardReason.Broken;
        }

        // The caller's cancellation: before its first byte the message was skipped (NotSent); after its end of data
        // the outcome is unknown. A decided outcome (accepted, refused) is the truth and is returned.
        if (request.Token.IsCancellationRequested)
        {
            if (result.Outcome == SmtpSendOutcome.NotSent)
            {
                if (result.Exception is OperationCanceledException && !connection.Session.IsConnected)
                {
                    // Its content was being written with DATA: the session closed the connection (never the final
                    // dot); that is the caller's doing, not a lost connection.
                    lock (_lock)
                    {
                        connection.CancelledByCaller = true;
                    }

                    connection.BrokenReason ??= SmtpSenderDiscardReason.TransactionAborted;
                }

                request.TrySetCanceled();
                return;
            }

            if (result.Outcome == SmtpSendOutcome.Unknown)
            {
                request.TrySetException(new SmtpOutcomeUnknownException(result, result.Exception, request.Token));
                return;
            }
        }

        // Disposal cancelled the batch (after DisposeTimeout) before this message's end of data: not sent; the documented
        // answer is ObjectDisposedException (a NotSent with a cancellation read as the caller's own, not to be retried).
        if (result.Outcome == SmtpSendOutcome.NotSent && result.Exception is OperationCanceledException && _disposeCts.IsCancellationRequested)
        {
            request.TrySetException(new ObjectDisposedException(nameof(SmtpSender), "The sender was disposed (DisposeTimeout ran out) before the message's end of data was written; it was not sent."));
            return;
        }

        // NotSent because the connection failed, or refused with 421 (the service closing the connection, not a verdict
        // on the message): nothing was delivered, so another connection may try once.
        var closing = IsServiceClosingRefusal(result);
        if ((closing || (result.Outcome == SmtpSendOutcome.NotSent && result.Exception is SmtpException { IsTransient: true }))
            && !connection.Session.IsConnected
            && _options.RetryOnFreshConnection
            && (request.Attempts < 2 || (request.Attempts < MaxAttempts && IsDroppedAtSessionLimit(connection, result)))
            && request.IsReplayable)
        {
            List<Work> start = [];
            bool? requeued = null;
            lock (_lock)
            {
                if (!_disposed)
                {
                    request.EnqueuedAt = _time.GetTimestamp(); // a new attempt: its own AcquireTimeout for a fresh connection
                    requeued = TryRequeue(request);
                }

                if (requeued == true)
                {
                    // Its AcquireTimeout runs from now: the tick may have stopped while nothing waited (its content written).
                    ArmHousekeeping();
                    Interlocked.Increment(ref _retries);
                    _metrics.Retried();
                    Log.PoolRetry(_log, Name, (result.Exception as SmtpException)?.ErrorCode ?? SmtpErrorCode.ServiceNotAvailable);
                    Dispatch(start);
                }
            }

            if (requeued is { } waits)
            {
                if (waits)
                {
                    Start(start);
                }
                else
                {
                    request.TrySetCanceled(); // its caller cancelled as it was queued: not sent
                }

                return;
            }
        }

        // Sent once more on a fresh connection: the result says so (SmtpSendResult.Attempts), as the retry counter does.
        request.TrySetResult(request.Attempts > 1 ? result.WithAttempts(request.Attempts) : result);
    }

    /// <summary>
    /// The feeder hands a message of its batch's first list to the session (in flight from now on), unless the batch's
    /// only caller in flight cancelled it (<see cref="OnCancelled"/>): that cancellation, sent after the decision, must
    /// not hit another caller's transaction, so the batch takes none of the rest (<see cref="ReturnUnsent"/>).
    /// </summary>
    private bool TryHandOver(PooledConnection connection, SendRequest request)
    {
        lock (_lock)
        {
            if (connection.CancelledByCaller)
            {
                return false;
            }

            connection.InFlight.Enqueue(request);
            return true;
        }
    }

    /// <summary>
    /// At the end of a batch: the messages of its first list from <paramref name="handed"/> on, which its session never
    /// asked for (the batch was cancelled or failed first), were not written, so they wait again, ahead of the queue, for
    /// this or another connection (not an attempt); a message cancelled meanwhile is cancelled, and when the sender is
    /// disposed they fail with <see cref="ObjectDisposedException"/> as every message still waiting. A cancellation
    /// decided too late to stop the batch leaves its connection whole: its next batch takes messages again.
    /// </summary>
    private void ReturnUnsent(PooledConnection connection, List<SendRequest> batch, int handed)
    {
        List<Work>? start = null;
        List<SendRequest>? ended = null;
        lock (_lock)
        {
            connection.CancelledByCaller &= !connection.Session.IsConnected;
            if (handed >= batch.Count)
            {
                return;
            }

            for (var i = Math.Max(handed, 0); i < batch.Count; i++)
            {
                var request = batch[i];
                if (_disposed || !TryRequeue(request)) // keeps its EnqueuedAt: its AcquireTimeout counts from its SendAsync
                {
                    (ended ??= []).Add(request);
                }
            }

            if (_waiting > 0 && !_disposed)
            {
                ArmHousekeeping();
                Dispatch(ref start);
            }
        }

        if (start is not null)
        {
            Start(start);
        }

        foreach (var request in ended ?? [])
        {
            if (request.Token.IsCancellationRequested)
            {
                request.TrySetCanceled();
            }
            else
            {
                request.TrySetException(new ObjectDisposedException(nameof(SmtpSender), "The sender was disposed while the message waited for its turn in a batch; it was not sent."));
            }
        }
    }

    /// <summary>
    /// Puts a taken request back in the retry queue, unless its caller cancelled: then it is dropped here and completed
    /// cancelled by the caller of this, after the lock. The token is read after the request is marked waiting (a full
    /// fence): a cancellation that this read misses finds the request waiting, and its registration (<see cref="OnCancelled"/>)
    /// drops it; when both see it, the claim decides. Read first, a cancellation between the read and the mark found
    /// the request taken and in no batch, and did nothing: the message waited with a cancelled token, for ever with no
    /// AcquireTimeout and no connection able to take it. Under the lock.
    /// </summary>
    /// <returns>False when it was dropped here.</returns>
    private bool TryRequeue(SendRequest request)
    {
        _options.BeforeRequeue?.Invoke(request.Token);
        request.Requeue();
        _retryQueue.Enqueue(request);
        _waiting++;
        if (request.Token.IsCancellationRequested && request.TryClaim(SendRequest.Dropped))
        {
            _retryQueue.Remove(request);
            _waiting--;
            return false;
        }

        return true;
    }

    /// <summary>
    /// Whether a NotSent message was left behind when the server ended a session that had done its work: the connection
    /// closed (421, or Exim's "554 Too many nonmail commands" past smtp_accept_max_nonmail, 10 by default, which counts
    /// each RSET after a refused transaction and each NOOP) before this transaction's MAIL was answered, after the server
    /// had decided other transactions on it. A per-connection limit, not this message's failure: it is sent again beyond
    /// the one retry, up to <see cref="MaxAttempts"/> in all (its retry landed on another long-lived connection that
    /// met the same limit). Nothing of it was processed, so it cannot be delivered twice or in part.
    /// </summary>
    private static bool IsDroppedAtSessionLimit(PooledConnection connection, SmtpSendResult result) =>
        result.Outcome == SmtpSendOutcome.NotSent
        && result.MailReply is null
        && result.Exception is SmtpException { ErrorCode: SmtpErrorCode.ServiceNotAvailable }
        && connection.Decided > 0;

    /// <summary>Whether a refusal came from a 421 (RFC 5321 §3.8: the server closes the channel) rather than from the message.</summary>
    private static bool IsServiceClosingRefusal(SmtpSendResult result) =>
        result.Outcome == SmtpSendOutcome.Refused
        && (result.MailReply?.Code == 421
            || result.DataReply?.Code == 421
            || result.FinalReply?.Code == 421
            || (result.Recipients.Count > 0 && result.Recipients.All(static r => r.Reply is null || r.Reply.Code == 421) && result.Recipients.Any(static r => r.Reply?.Code == 421)));

    /// <summary>
    /// A message that no connection took within <see cref="SmtpSenderOptions.AcquireTimeout"/>: NotSent, TimedOut. When
    /// no connection was sending and one was still opening, that is the cause, not a busy pool: the server has not
    /// answered the greeting, TLS, EHLO or AUTH yet (the acquire timeout ends before the reply timeout started later).
    /// </summary>
    private SmtpSendResult AcquireTimedOut(SendRequest request, bool stillOpening) => SmtpSendResult.NotSent(
        request.Message.Envelope,
        new SmtpException(
            SmtpErrorCode.TimedOut,
            stillOpening
                ? $"No connection to {Name} was available within {_options.AcquireTimeout.TotalSeconds:0.###} s (AcquireTimeout): none was sending, and the connection was still being opened (no greeting, TLS, EHLO or AUTH reply yet: a server that does not answer, or a TlsMode that does not match the port, such as StartTlsRequired on an implicit-TLS port 465); the message was not sent."
                : $"No connection to {Name} was available within {_options.AcquireTimeout.TotalSeconds:0.###} s (AcquireTimeout); the message was not sent.",
            new TimeoutException()));
}
