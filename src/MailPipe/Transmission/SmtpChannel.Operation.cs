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

    /// <summary>
    /// Starts one public operation (the guard): the disposed check, one operation at a time, the required state, no
    /// replies left unread (unless allowed), the caller's token not already cancelled; then the token is linked to
    /// both deadlines and the operation is counted.
    /// </summary>
    /// <param name="requiredState">The state the operation needs.</param>
    /// <param name="allowData">Whether <see cref="SmtpSessionState.SendingData"/> will do too.</param>
    /// <param name="allowPendingReplies">Whether replies may still be unread (raw commands).</param>
    /// <param name="cancellationToken">The caller's token.</param>
    /// <returns>The scope; disposing it ends the operation.</returns>
    /// <exception cref="ObjectDisposedException">The session was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another operation runs, the state is wrong, or replies are unread.</exception>
    /// <exception cref="OperationCanceledException">The token is already cancelled (nothing was written: the connection stays open and usable).</exception>
    public OperationScope StartOperation(SmtpSessionState requiredState, bool allowData, bool allowPendingReplies, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, _owner);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, _owner);
            throw new InvalidOperationException("Another operation is in progress on this SMTP session; await it first (one operation at a time).");
        }

        if (Refusal(requiredState, allowData, allowPendingReplies) is { } refusal)
        {
            Volatile.Write(ref _busy, 0);
            throw new InvalidOperationException(refusal);
        }

        if (cancellationToken.IsCancellationRequested)
        {
            Volatile.Write(ref _busy, 0);
            cancellationToken.ThrowIfCancellationRequested();
        }

        if (requiredState == SmtpSessionState.Disconnected)
        {
            ForgetAbortWhileDisconnected();
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

    private string? Refusal(SmtpSessionState requiredState, bool allowData, bool allowPendingReplies)
    {
        var state = State;
        if (state != requiredState && !(allowData && state == SmtpSessionState.SendingData))
        {
            return state switch
            {
                SmtpSessionState.Disconnected => "The SMTP session is not connected; call ConnectAsync first.",
                SmtpSessionState.SendingData when requiredState == SmtpSessionState.Connected => "The SMTP session is sending message data; finish it with EndMessageDataAsync (or a SendMessageDataAsync overload) first.",
                SmtpSessionState.Connected when requiredState == SmtpSessionState.SendingData => "Message data can only be sent after DataAsync returned 354.",
                _ => "The SMTP session is already connected; call DisconnectAsync or QuitAsync first.",
            };
        }

        var pending = !allowPendingReplies && state != SmtpSessionState.Disconnected ? _replies.Count : 0;
        return pending > 0
            ? $"{pending} repl(ies) to earlier commands (or the greeting) have not been read; read them with ReceiveReplyAsync first, or every later reply would be taken for the wrong command."
            : null;
    }

    /// <summary>Ends the operation: the layer above's connection state is reset when the connection was closed under it (on this flow), the deadlines are reset, the guard released.</summary>
    public void EndOperation()
    {
        if (State != SmtpSessionState.Disconnected && !IsOpen)
        {
            // The connection was closed during the operation: the layer above resets its state here, on the operation's flow.
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
    /// <returns>Whether this is the first dispose call (a later one leaves the state as it is: a session once disposed stays disposed).</returns>
    public bool TryStartDispose() => Interlocked.CompareExchange(ref _disposeState, DisposeStarted, NotDisposed) == NotDisposed;

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
