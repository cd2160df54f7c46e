namespace MailPipe;

/// <summary>
/// The check behind the health check of MailPipe.Extensions.DependencyInjection: can the pool lend a connection?
/// It goes through the pool's own slots, so that it never opens a connection beyond
/// <see cref="SmtpSenderOptions.MaxConnections"/> (a server's connection limit would refuse it).
/// </summary>
public sealed partial class SmtpSender
{
    /// <summary>Idle connections lent to a check's NOOP (counted in <c>_busy</c> too, but not sending); under <c>_lock</c>.</summary>
    private int _probing;

    /// <summary>Whether the disposal has begun (for the health check, which reports a disposed sender as such however its check ended).</summary>
    internal bool IsDisposed => Volatile.Read(ref _disposed);

    /// <summary>The last check that probes an idle connection: a concurrent check with no slot of its own takes its answer.</summary>
    private Task<SmtpSenderCheck>? _probe;

    /// <summary>
    /// Checks that the pool can lend a connection: an idle one answers NOOP (RFC 5321 §4.1.1.9), or, with a free slot,
    /// a new one opens (connect, TLS, EHLO, AUTH) and joins the pool as idle. Degraded when every slot is lent (no probe:
    /// a connection waiting for a server that stopped answering counts as lent until its reply timeout), or when a new
    /// connection fails while others are lent. The check itself is never cancelled: <paramref name="cancellationToken"/> only
    /// stops the wait, and a connection being opened still joins the pool.
    /// </summary>
    /// <returns>Whether the pool can lend, and why (or why not).</returns>
    /// <exception cref="ObjectDisposedException">The sender is disposed: when the check starts, or when it ends (a check
    /// that the disposal overtook never answers healthy, nor with the failure of an open the disposal cancelled).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    internal async Task<SmtpSenderCheck> CheckConnectionAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task<SmtpSenderCheck>? check = null;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_idle.TryPop(out var idle))
                {
                    idle.IsIdle = false;
                    _busy++;
                    _probing++;
                    _workers++;
                    check = _probe = CheckIdleAsync(idle);
                }
                else if (_open < _options.MaxConnections)
                {
                    _open++;
                    _opening++;
                    _workers++;
                    check = CheckByOpeningAsync();
                }
                else if (_probing > 0 && _probe is { } probe)
                {
                    // The connection that is not sending is another check's NOOP: its answer is this one's.
                    check = probe;
                }
                else if (_busy > 0)
                {
                    // Nothing to probe, and nothing known of the server since these connections were lent: Degraded (a
                    // readiness endpoint still answers 200 by default), not Healthy on the pool's word. At capacity too:
                    // the next message waits for one of them.
                    return new SmtpSenderCheck(false, $"Every connection to {Name} ({_busy} of {_options.MaxConnections}) is sending, and messages waiting for one: {_waiting}; no connection was free to probe (a connection waiting for a server that stopped answering counts as sending until its reply timeout).", null, IsDegraded: true);
                }
            }

            if (check is not null)
            {
                return await check.WaitAsync(cancellationToken).ConfigureAwait(false);
            }

            // Every slot is a connection being opened: its outcome is the answer (or frees a slot for our own).
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<SmtpSenderCheck> CheckIdleAsync(PooledConnection connection)
    {
        try
        {
            connection.LentFromIdle = false;
            var reason = await CheckBeforeLendingAsync(connection, noop: true).ConfigureAwait(false);
            if (reason is null)
            {
                List<Work> start = [];
                bool disposed;
                lock (_lock)
                {
                    _busy--;
                    _probing--;
                    disposed = _disposed;
                    if (disposed)
                    {
                        _open--;
                    }
                    else
                    {
                        ReturnIdle(connection);
                        Dispatch(start);
                    }
                }

                // Closed here only when the disposal began first: returned idle, it is the disposal's to close (closing
                // it here too, as a disposal that began just after the lock once made it, counted it discarded twice).
                if (disposed)
                {
                    await CloseAsync(connection, SmtpSenderDiscardReason.Disposed, quit: true).ConfigureAwait(false);
                }

                Start(start);
                return HealthyUnlessDisposed($"An idle connection to {Name} answered NOOP.");
            }

            await CloseAsync(connection, reason, quit: reason is SmtpSenderDiscardReason.Lifetime or SmtpSenderDiscardReason.NonMailLimit).ConfigureAwait(false);
            lock (_lock)
            {
                _busy--;
                _probing--;
                _opening++;
                _workers++;
            }

            return await CheckByOpeningAsync().ConfigureAwait(false);
        }
        finally
        {
            WorkerDone();
        }
    }

    private async Task<SmtpSenderCheck> CheckByOpeningAsync()
    {
        try
        {
            var failuresBefore = Interlocked.Read(ref _openFailures);
            var (opened, error) = await OpenAsync().ConfigureAwait(false);
            List<Work> start = [];
            var close = false;
            int busy;
            bool disposed;
            lock (_lock)
            {
                busy = _busy - _probing;
                _opening--;
                disposed = _disposed;
                if (opened is null || disposed)
                {
                    _open--;
                    close = opened is not null;

                    // A message sent meanwhile waited for this connection (no other was opened for it): it gets its own
                    // connection now (whose failure it learns), not its acquire timeout.
                    Dispatch(start);
                }
                else
                {
                    OpenSucceeded(failuresBefore);
                    _all.Add(opened);
                    ReturnIdle(opened);
                    Dispatch(start);
                }
            }

            Start(start);
            if (close)
            {
                await CloseAsync(opened!, SmtpSenderDiscardReason.Disposed, quit: true).ConfigureAwait(false);
            }

            // The disposal cancelled this open, or began while it ended: that, not the open's outcome, is the answer.
            ObjectDisposedException.ThrowIf(disposed, this);

            // A refused open while other connections are sending (a server at its connection limit, or refusing new
            // sessions while it finishes the ones it has): Degraded, those may still deliver; Unhealthy with none.
            return opened is not null
                ? HealthyUnlessDisposed($"A new connection to {Name} opened and answered EHLO.")
                : busy > 0
                    ? new SmtpSenderCheck(false, $"Opening a new connection to {Name} failed ({error!.ErrorCode}): {error.Message}; connections of the pool still sending: {busy}.", error, IsDegraded: true)
                    : new SmtpSenderCheck(false, $"Opening a connection to {Name} failed ({error!.ErrorCode}): {error.Message}", error);
        }
        finally
        {
            WorkerDone();
        }
    }

    /// <summary>
    /// A healthy answer, unless the disposal has begun by now (a check that ends after it never says Healthy: the
    /// connection it found is being closed, and no message can be sent any more).
    /// </summary>
    /// <exception cref="ObjectDisposedException">The disposal has begun.</exception>
    private SmtpSenderCheck HealthyUnlessDisposed(string description)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        return new SmtpSenderCheck(true, description, null);
    }

    private void WorkerDone()
    {
        lock (_lock)
        {
            if (--_workers == 0 && _disposed)
            {
                _workersDone.TrySetResult();
            }
        }
    }
}

/// <summary>The answer of <see cref="SmtpSender.CheckConnectionAsync"/>.</summary>
/// <param name="IsHealthy">Whether the pool can lend a connection.</param>
/// <param name="Description">What was found, for a health report.</param>
/// <param name="Exception">Why a connection could not be opened, when that was the finding.</param>
/// <param name="IsDegraded">
/// Not healthy but not failed: every connection is sending (nothing to probe), or a new connection was refused while
/// others are sending.
/// </param>
internal readonly record struct SmtpSenderCheck(bool IsHealthy, string Description, Exception? Exception, bool IsDegraded = false);
