namespace MailPipe;

/// <summary>The pool's disposal, one for <see cref="SmtpSender.DisposeAsync"/> and <see cref="SmtpSender.Dispose"/>.</summary>
public sealed partial class SmtpSender
{
    /// <summary>
    /// Closes the pool: messages still waiting for a connection fail with <see cref="ObjectDisposedException"/>, idle
    /// connections get QUIT, batches in flight get <see cref="SmtpSenderOptions.DisposeTimeout"/> to finish and are
    /// then cancelled (their callers learn <see cref="SmtpSendOutcome.Unknown"/> for a message whose end of data was
    /// written, <see cref="ObjectDisposedException"/> for one whose end of data was not). Never throws for the server's
    /// or the network's sake. Idempotent: a call while the disposal is under way (this method or <see cref="Dispose"/>)
    /// completes when that disposal is over.
    /// </summary>
    /// <returns>A task that completes when every connection is closed.</returns>
    public ValueTask DisposeAsync() => TryStartDisposal(out var dropped, out var idle) ? new(DisposeOnceAsync(dropped, idle)) : new(_disposalDone.Task);

    /// <summary>
    /// Closes the pool by the rules of <see cref="DisposeAsync"/> (waiting messages fail with
    /// <see cref="ObjectDisposedException"/>, QUIT on idle connections, up to <see cref="SmtpSenderOptions.DisposeTimeout"/>
    /// for batches in flight, then their cancellation), blocking the calling thread until every connection is closed.
    /// For <c>using var sender = ...</c> and containers disposed synchronously (<c>using var provider =
    /// services.BuildServiceProvider();</c>); prefer <see cref="DisposeAsync"/> where the caller can await.
    /// </summary>
    /// <remarks>
    /// Not an abort, unlike <see cref="AsyncSmtpSession.Dispose"/>: the connections are shared, and cutting them would
    /// turn other callers' messages in flight into <see cref="SmtpSendOutcome.Unknown"/>. The disposal runs on the thread
    /// pool and never needs the caller's <see cref="SynchronizationContext"/>, so it does not deadlock on a UI or other
    /// single-threaded context; called from a thread-pool thread it holds that thread for as long as the disposal takes
    /// (the QUIT on idle connections, 5 seconds at most, then up to <see cref="SmtpSenderOptions.DisposeTimeout"/> for
    /// batches in flight, whose connections get QUIT in turn). Idempotent, and safe while
    /// <see cref="DisposeAsync"/> or <see cref="Dispose"/> runs on another thread: it then returns when that disposal is
    /// over. Do not call it from code the sender runs (a content writer, a credentials or access-token provider, a
    /// logger): the disposal would wait for that code, which waits for the disposal.
    /// </remarks>
    public void Dispose()
    {
        if (_disposalDone.Task.IsCompleted)
        {
            return;
        }

        // Blocking is this method's contract (as NpgsqlDataSource.Dispose and ConnectionMultiplexer.Dispose). The
        // disposal starts on the thread pool and awaits with ConfigureAwait(false) throughout: no continuation needs the
        // calling thread or its context, so the wait cannot deadlock on them.
        Task.Run(() => DisposeAsync().AsTask()).GetAwaiter().GetResult();
    }

    private static void DrainQueue(Queue<SendRequest> queue, List<SendRequest> into)
    {
        while (queue.TryDequeue(out var request))
        {
            if (request.TryClaim(SendRequest.Dropped))
            {
                into.Add(request);
            }
        }
    }

    /// <summary>Marks the sender disposed and takes what the disposal closes; false when another call did so first.</summary>
    private bool TryStartDisposal(out List<SendRequest> dropped, out List<PooledConnection> idle)
    {
        dropped = [];
        lock (_lock)
        {
            if (_disposed)
            {
                idle = [];
                return false;
            }

            _disposed = true;
            DrainQueue(_retryQueue, dropped);
            DrainQueue(_queue, dropped);
            _waiting = 0;
            idle = [.. _idle];
            _idle.Clear();
            if (_workers == 0)
            {
                _workersDone.TrySetResult();
            }

            return true;
        }
    }

    private async Task DisposeOnceAsync(List<SendRequest> dropped, List<PooledConnection> idle)
    {
        try
        {
            _sweeper.Dispose();
            await _openCts.CancelAsync().ConfigureAwait(false);
            foreach (var request in dropped)
            {
                request.TrySetException(new ObjectDisposedException(nameof(SmtpSender), "The sender was disposed while the message waited for a connection; it was not sent."));
            }

            await Task.WhenAll(idle.Select(c => CloseAsync(c, SmtpSenderDiscardReason.Disposed, quit: true))).ConfigureAwait(false);
            try
            {
                await _workersDone.Task.WaitAsync(_options.DisposeTimeout, _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                await _disposeCts.CancelAsync().ConfigureAwait(false);
                await _workersDone.Task.ConfigureAwait(false);
            }

            _housekeeper.Dispose();
            _disposeCts.Dispose();
            _openCts.Dispose();
            _metrics.Dispose();
        }
        finally
        {
            _disposalDone.TrySetResult();
        }
    }
}
