namespace MailPipe;

/// <summary>
/// The pool's housekeeping tick, while messages wait or batches run (acquire timeouts, lost connections of waiting
/// batches, the end of an open back-off), and the open back-off itself. Under <c>_lock</c> like the rest of the pool.
/// </summary>
public sealed partial class SmtpSender
{
    /// <summary>
    /// After a failed connect while other connections work, no new connect is tried for this long; it doubles with each
    /// failure in a row, up to <see cref="MaxOpenBackoffMilliseconds"/>, and starts again at this after a successful open.
    /// </summary>
    private const long OpenBackoffMilliseconds = 1000;

    /// <summary>The longest open back-off: a server at its per-client connection limit gets one refused connect per 30 s at most.</summary>
    private const long MaxOpenBackoffMilliseconds = 30_000;

    /// <summary>The period of the housekeeping tick while messages wait or batches run.</summary>
    private static readonly TimeSpan HousekeepingPeriod = TimeSpan.FromMilliseconds(50);

    private bool _housekeeping;

    /// <summary>The timestamp before which no new connection is opened (0: none).</summary>
    private long _openBackoffUntil;

    /// <summary>Connects that failed in a row while other connections worked (the open back-off's exponent); 0 after a successful open.</summary>
    private int _openFailuresInARow;

    /// <summary>Starts the housekeeping tick (acquire timeouts, lost connections of waiting batches) if it is not running. Under the lock.</summary>
    private void ArmHousekeeping()
    {
        if (!_housekeeping)
        {
            _housekeeping = true;
            _housekeeper.Change(HousekeepingPeriod, HousekeepingPeriod);
        }
    }

    /// <summary>
    /// The housekeeping tick, while messages wait or batches run: messages past their acquire timeout are completed
    /// NotSent (the queue is in arrival order: only its head is looked at), and a batch waiting on a connection that
    /// was lost is woken (the session reports a lost batch's results only once its sequence ends), and when an open
    /// back-off ended with messages waiting, a new connection is opened for them.
    /// </summary>
    private void Housekeep()
    {
        List<SendRequest> expired = [];
        List<Work>? start = null;
        bool stillOpening;
        lock (_lock)
        {
            // An open back-off that ended while every busy connection is still at its batch (a long message) and no
            // event dispatched since: the waiting messages get their new connection now, not at their acquire timeout.
            if (_openBackoffUntil != 0 && _waiting > 0 && _time.GetTimestamp() >= _openBackoffUntil)
            {
                _openBackoffUntil = 0;
                Dispatch(ref start);
            }

            if (_options.AcquireTimeout != Timeout.InfiniteTimeSpan)
            {
                ExpireAll(_retryQueue, expired);
                ExpireHead(_queue, expired);
            }

            stillOpening = _busy == 0 && _opening > 0;

            var feeding = false;
            foreach (var connection in _all)
            {
                if (connection.Feeding)
                {
                    feeding = true;
                    if (!connection.Session.IsConnected)
                    {
                        connection.Wake();
                    }
                }
            }

            if (_waiting == 0 && !feeding && _housekeeping)
            {
                _housekeeping = false;
                _housekeeper.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        if (start is not null)
        {
            Start(start);
        }

        foreach (var request in expired)
        {
            request.TrySetResult(AcquireTimedOut(request, stillOpening));
        }
    }

    /// <summary>
    /// Starts the open back-off after a failed connect while other connections work (<paramref name="failuresBefore"/>:
    /// <c>_openFailures</c> when it began). Connects refused together (one burst began them all, and another failed
    /// while this one ran) are one refusal, not several in a row: one of them starts the back-off, the others leave the
    /// running one as it is, so that the first back-off is 1 s however many a burst opened. Under the lock.
    /// </summary>
    private void BackOffOpening(long failuresBefore)
    {
        if (Interlocked.Read(ref _openFailures) - 1 > failuresBefore && _openBackoffUntil != 0 && _time.GetTimestamp() < _openBackoffUntil)
        {
            return;
        }

        var milliseconds = Math.Min(OpenBackoffMilliseconds << Math.Min(_openFailuresInARow, 5), MaxOpenBackoffMilliseconds);
        _openFailuresInARow++;
        _openBackoffUntil = _time.GetTimestamp() + (_time.TimestampFrequency * milliseconds / 1000);
    }

    /// <summary>
    /// An open succeeded (<paramref name="failuresBefore"/>: <c>_openFailures</c> when it began): the back-off's exponent
    /// starts again, and a back-off still running ends when no open failed while this one ran: the server accepted a
    /// connect after the last one it refused (it is back, or no longer at its limit), so a stale back-off of up to 30 s
    /// must not hold the waiting messages to one connection. Under the lock.
    /// </summary>
    private void OpenSucceeded(long failuresBefore)
    {
        _openFailuresInARow = 0;
        if (Interlocked.Read(ref _openFailures) == failuresBefore)
        {
            _openBackoffUntil = 0;
        }
    }

    /// <summary>
    /// Expires every waiting message of the retry queue past its acquire timeout: not in enqueue-time order (a message a
    /// batch gave back unsent keeps its first time, a retry gets a new one), but short (at most the batches in flight).
    /// </summary>
    private void ExpireAll(RequestQueue queue, List<SendRequest> expired)
    {
        for (var request = queue.Head; request is not null;)
        {
            var next = request.Next;
            if (request.IsWaiting && _time.GetElapsedTime(request.EnqueuedAt) >= _options.AcquireTimeout && request.TryClaim(SendRequest.Dropped))
            {
                _waiting--;
                expired.Add(request);
                queue.Remove(request);
            }

            request = next;
        }

        ExpireHead(queue, expired); // drops the ones a cancellation claimed but has not taken out yet
    }

    private void ExpireHead(RequestQueue queue, List<SendRequest> expired)
    {
        while (queue.Head is { } head)
        {
            if (head.IsWaiting)
            {
                if (_time.GetElapsedTime(head.EnqueuedAt) < _options.AcquireTimeout || !head.TryClaim(SendRequest.Dropped))
                {
                    return;
                }

                _waiting--;
                expired.Add(head);
            }

            queue.Remove(head);
        }
    }
}
