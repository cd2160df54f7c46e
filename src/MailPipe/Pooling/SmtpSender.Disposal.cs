namespace MailPipe;

/// <summary>The pool's disposal, one for <see cref="SmtpSender.DisposeAsync"/> and <see cref="SmtpSender.Dispose"/>.</summary>
public sealed partial class SmtpSender
{
    /// <summary>
    /// Closes the pool: messages still waiting for a connection fail with <see cref="ObjectDisposedException"/>, idle
    /// connections get QUIT, batches in flight get <see cref="SmtpSenderOptions.DisposeTimeout"/> to finish and are
    /// then cancelled (their callers learn <see cref="SmtpSendOutcome.Unknown"/> for a message whose end of data was
    /// written, <see cref="ObjectDisposedException"/> for one whose end of data was not). The QUIT on idle connections
    /// (up to 5 s for its reply) runs at the same time as that DisposeTimeout; the task completes when both are over
    /// and every connection is closed (a connection that ends its batch also gets QUIT, with the same 5 s limit, before
    /// it is closed). Never throws for the server's or the network's sake. Idempotent: a call after <see cref="Dispose"/> or while another disposal is under way
    /// completes when that disposal is over (every connection closed).
    /// </summary>
    /// <returns>A task that completes when every connection is closed.</returns>
    public ValueTask DisposeAsync()
    {
        if (TryStartDisposal(out var idle, out var openCancelled))
        {
            // Runs inline up to its first wait, as any awaited disposal; ConfigureAwait(false) throughout.
            _ = FinishDisposalAsync(idle, openCancelled);
        }

        return new(_disposalDone.Task);
    }

    /// <summary>
    /// Starts the disposal without waiting for it, as <c>NpgsqlDataSource.Dispose</c> does: before it returns, the sender
    /// is marked disposed (new sends throw <see cref="ObjectDisposedException"/>), the messages still waiting for a
    /// connection have failed with <see cref="ObjectDisposedException"/> and the connections being opened are
    /// cancelled. The rest of the disposal runs in the background, by the rules of <see cref="DisposeAsync"/>: QUIT on
    /// idle connections, up to <see cref="SmtpSenderOptions.DisposeTimeout"/> for batches in flight (their callers get
    /// their true results), then their cancellation. Dispose does not wait for any of that, nor for a connection to
    /// close; prefer <c>await using</c> (<see cref="DisposeAsync"/>), which does, for example before the process exits.
    /// </summary>
    /// <remarks>
    /// For <c>using var sender = ...</c> and containers disposed synchronously (<c>using var provider =
    /// services.BuildServiceProvider();</c>). Not an abort, unlike <see cref="AsyncSmtpSession.Dispose"/>: the
    /// connections are shared, and cutting them would turn other callers' messages in flight into
    /// <see cref="SmtpSendOutcome.Unknown"/>. Never blocks on asynchronous work and runs nothing of the background part
    /// on the calling thread, so it cannot deadlock on the caller's <see cref="SynchronizationContext"/> (a UI thread)
    /// nor hold a thread-pool thread. A failure of the background part (a bug) is logged as
    /// <see cref="MailPipeEventId.PoolDisposalFailed"/>. Idempotent and thread-safe: a later or concurrent
    /// <see cref="DisposeAsync"/> completes when this disposal is over; a <see cref="Dispose"/> that finds the disposal
    /// started returns at once.
    /// </remarks>
    public void Dispose()
    {
        if (TryStartDisposal(out var idle, out var openCancelled))
        {
            // On the thread pool: no QUIT, log call or continuation of the disposal runs on (or posts to) the caller's thread.
            _ = Task.Run(() => FinishDisposalAsync(idle, openCancelled));
        }
    }

    private static void DrainQueue(RequestQueue queue, List<SendRequest> into)
    {
        while (queue.TryDequeue(out var request))
        {
            if (request.TryClaim(SendRequest.Dropped))
            {
                into.Add(request);
            }
        }
    }

    /// <summary>
    /// The disposal's synchronous part: marks the sender disposed, fails the waiting messages, cancels the connections
    /// being opened (their token at once, its callbacks on the thread pool: <paramref name="openCancelled"/>) and takes
    /// the idle connections; false when another call did so first.
    /// </summary>
    private bool TryStartDisposal(out List<PooledConnection> idle, out Task openCancelled)
    {
        List<SendRequest> dropped = [];
        lock (_lock)
        {
            if (_disposed)
            {
                idle = [];
                openCancelled = Task.CompletedTask;
                return false;
            }

            _disposed = true;
            DrainQueue(_retryQueue, dropped);
            DrainQueue(_queue, dropped);

            // Not set to 0: a cancellation that claimed its message but waits for the lock still takes it off the count.
            _waiting -= dropped.Count;
            idle = [.. _idle];
            _idle.Clear();
            if (_workers == 0)
            {
                _workersDone.TrySetResult();
            }
        }

        _sweeper.Dispose();
        openCancelled = _openCts.CancelAsync();
        foreach (var request in dropped)
        {
            // The callers' continuations run asynchronously (SendRequest), never on the disposing thread.
            request.TrySetException(new ObjectDisposedException(nameof(SmtpSender), "The sender was disposed while the message waited for a connection; it was not sent."));
        }

        return true;
    }

    /// <summary>The disposal's asynchronous part: QUIT on idle connections, the batches in flight, then the timers and the meter. Never throws.</summary>
    private async Task FinishDisposalAsync(List<PooledConnection> idle, Task openCancelled)
    {
        try
        {
            await openCancelled.ConfigureAwait(false);

            // The QUIT on idle connections runs alongside the DisposeTimeout of the batches in flight, not before it: a
            // server that does not answer QUIT does not delay the batches' cancellation.
            var quits = Task.WhenAll(idle.Select(c => CloseAsync(c, SmtpSenderDiscardReason.Disposed, quit: true)));
            try
            {
                await _workersDone.Task.WaitAsync(_options.DisposeTimeout, _time).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                await _disposeCts.CancelAsync().ConfigureAwait(false);
                await _workersDone.Task.ConfigureAwait(false);
            }

            await quits.ConfigureAwait(false);

            _housekeeper.Dispose();
            _disposeCts.Dispose();
            _openCts.Dispose();
            _metrics.Dispose();
        }
        catch (Exception ex)
        {
            // Nobody may await this task (Dispose does not): the failure is logged, never left unobserved.
            LogDisposalFailed(ex);
        }
        finally
        {
            _disposalDone.TrySetResult();
        }
    }

    private void LogDisposalFailed(Exception exception)
    {
        try
        {
            Log.PoolDisposalFailed(_log, Name, exception);
        }
        catch (Exception)
        {
            // Deliberately swallowed: the logger itself failed while reporting the disposal's failure, and there is
            // nowhere left to report it; the disposal still completes (the finally above).
        }
    }
}
