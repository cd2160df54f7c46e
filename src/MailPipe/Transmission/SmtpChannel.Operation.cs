namespace MailPipe.Transmission;

/// <summary>The operation guard (one operation at a time, the disposed check, the caller's token) and the deadlines.</summary>
internal sealed partial class SmtpChannel
{
    private const int NotDisposed = 0;
    private const int DisposeStarted = 1;
    private const int Disposed = 2;

    private readonly object _owner;
    private readonly Action _connectionLost;
    private CancellationTokenSource _sendCts;
    private CancellationTokenSource _readCts;
    private CancellationTokenRegistration _callerSendRegistration;
    private CancellationTokenRegistration _callerReadRegistration;
    private CancellationToken _callerToken;
    private TimeSpan _sendTimeout;
    private TimeSpan _readTimeout;
    private int _busy;

    /// <summary><see cref="NotDisposed"/>, <see cref="DisposeStarted"/> (QUIT of <c>DisposeAsync</c> in progress) or <see cref="Disposed"/>.</summary>
    private int _disposeState;

    /// <summary>Counts operations, so that a read started in one can be told from one started in an earlier one.</summary>
    private int _operationNumber;

    /// <summary>Whether an operation runs.</summary>
    public bool IsBusy => Volatile.Read(ref _busy) != 0;

    /// <summary>Whether the session was disposed (every operation throws <see cref="ObjectDisposedException"/>).</summary>
    public bool IsDisposed => Volatile.Read(ref _disposeState) == Disposed;

    /// <summary>The running operation's caller token.</summary>
    public CancellationToken CallerToken => _callerToken;

    /// <summary>Cancelled by the send deadline (<see cref="StartSendDeadline"/>) or the caller's token: for writes, connects and handshakes.</summary>
    public CancellationToken SendToken => _sendCts.Token;

    /// <summary>Whether the send deadline passed or the caller cancelled.</summary>
    public bool SendCancelled => _sendCts.IsCancellationRequested;

    /// <summary>
    /// Takes the guard: the disposed check, then one operation at a time. Nothing is registered yet: the layer above
    /// checks its state, then calls <see cref="StartOperation"/>, or <see cref="ReleaseGuard"/> to refuse.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The session was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another operation runs.</exception>
    public void TakeGuard()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, _owner);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, _owner);
            throw new InvalidOperationException("Another operation is in progress on this SMTP session; await it first (one operation at a time).");
        }
    }

    /// <summary>Releases the guard of an operation that was refused before it started.</summary>
    public void ReleaseGuard() => Volatile.Write(ref _busy, 0);

    /// <summary>Starts the operation whose guard is taken: the caller's token is linked to both deadlines.</summary>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The scope that ends it.</returns>
    /// <exception cref="OperationCanceledException">The token is already cancelled (nothing was written: the connection stays open and usable).</exception>
    public OperationScope StartOperation(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            ReleaseGuard();
            cancellationToken.ThrowIfCancellationRequested();
        }

        _callerToken = cancellationToken;
        _operationNumber++;
        if (cancellationToken.CanBeCanceled)
        {
            _callerSendRegistration = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), _sendCts);
            _callerReadRegistration = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), _readCts);
        }

        return new OperationScope(this);
    }

    /// <summary>Ends the operation: the layer above's connection state is reset when the connection was closed under it (on this flow), the deadlines are reset, the guard released.</summary>
    public void EndOperation()
    {
        if (_attached && !IsOpen)
        {
            _connectionLost();
        }

        _callerSendRegistration.Dispose();
        _callerSendRegistration = default;
        _callerReadRegistration.Dispose();
        _callerReadRegistration = default;
        _callerToken = default;
        if (!_sendCts.TryReset())
        {
            _sendCts.Dispose();
            _sendCts = NewDeadlineSource();
        }

        if (!_readCts.TryReset())
        {
            _readCts.Dispose();
            _readCts = NewDeadlineSource();
        }

        Volatile.Write(ref _busy, 0);
    }

    /// <summary>Marks the start of <c>DisposeAsync</c>.</summary>
    /// <returns>Whether this is the first dispose call.</returns>
    public bool TryStartDispose() => Interlocked.Exchange(ref _disposeState, DisposeStarted) == NotDisposed;

    /// <summary>From now on every operation throws <see cref="ObjectDisposedException"/>.</summary>
    public void MarkDisposed() => Volatile.Write(ref _disposeState, Disposed);

    /// <summary>
    /// After <see cref="MarkDisposed"/>: the token sources are disposed when no operation runs, taking the guard for
    /// good; an operation still running (it fails now that the connection is closed) keeps them.
    /// </summary>
    public void ReleaseTokenSources()
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
        {
            _sendCts.Dispose();
            _readCts.Dispose();
        }
    }

    /// <summary>Starts the send deadline (a write, a connect, a handshake).</summary>
    /// <param name="timeout">The limit; <see cref="Timeout.InfiniteTimeSpan"/> for none.</param>
    public void StartSendDeadline(TimeSpan timeout)
    {
        _sendTimeout = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _sendCts.CancelAfter(timeout);
        }
    }

    /// <summary>Stops the send deadline.</summary>
    public void StopSendDeadline()
    {
        if (_sendTimeout != Timeout.InfiniteTimeSpan && !_sendCts.IsCancellationRequested)
        {
            _sendCts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Starts the receive deadline; separate from the send deadline so that replies can be read while a long group is still being written (RFC 2920 §3.1).</summary>
    private void StartReadDeadline(TimeSpan timeout)
    {
        _readTimeout = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _readCts.CancelAfter(timeout);
        }
    }

    private void StopReadDeadline()
    {
        if (_readTimeout != Timeout.InfiniteTimeSpan && !_readCts.IsCancellationRequested)
        {
            _readCts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    private CancellationTokenSource NewDeadlineSource() => new(Timeout.InfiniteTimeSpan, _options.TimeProvider);
}
