using System.Threading.Tasks.Sources;

namespace MailPipe;

/// <summary>One pooled connection and what the pool knows of it.</summary>
internal sealed class PooledConnection(AsyncSmtpSession session, long createdAt) : IValueTaskSource
{
    public AsyncSmtpSession Session { get; } = session;

    /// <summary>The number of the connection within its sender (from 1), in the log scope.</summary>
    public long Id { get; init; }

    /// <summary>The failure that broke it, when a result told.</summary>
    public Exception? BrokenException { get; set; }

    /// <summary>Cancels the running batch (the only caller in flight cancelled). Under the pool's lock.</summary>
    public CancellationTokenSource? BatchCancellation { get; set; }

    /// <summary>Whether it was closed for a caller's sake (its batch cancelled by its only caller, a DATA message cancelled in its content, or a DATA message whose content failed or was refused midway): it takes no more messages, and is closed without a lost-connection warning.</summary>
    public bool CancelledByCaller { get; set; }

    /// <summary>When it was opened (a <see cref="TimeProvider"/> timestamp).</summary>
    public long CreatedAt { get; } = createdAt;

    /// <summary>When it last went idle.</summary>
    public long IdleSince { get; set; }

    /// <summary>Whether it sits in the idle stack.</summary>
    public bool IsIdle { get; set; }

    /// <summary>Whether it comes from the idle stack and must be checked before its batch.</summary>
    public bool LentFromIdle { get; set; }

    /// <summary>Messages handed to it.</summary>
    public int Messages { get; set; }

    /// <summary>Messages whose transactions the server decided on it (Accepted or Refused): it did work before it was lost.</summary>
    public int Decided { get; set; }

    /// <summary>Messages handed to its running batch.</summary>
    public int BatchMessages { get; set; }

    /// <summary>Why it broke, when a result told (421 or not).</summary>
    public string? BrokenReason { get; set; }

    /// <summary>The messages of the running batch whose results are not known yet, in batch order. Under the pool's lock.</summary>
    public Queue<SendRequest> InFlight { get; } = new();

    /// <summary>Whether the running batch waits for a result or a new message (it can take more). Under the pool's lock.</summary>
    public bool Feeding { get; set; }

    /// <summary>The feeder's wait, reused for every wait of every batch (only the feeder awaits it, one wait at a time).</summary>
    private ManualResetValueTaskSourceCore<bool> _wake = new() { RunContinuationsAsynchronously = true };

    private bool _armed;

    /// <summary>Whether the batch's feeder waits for a <see cref="Wake"/>. Under the pool's lock.</summary>
    public bool IsWaitingForWork => _armed;

    /// <summary>A wait that completes at the next <see cref="Wake"/> (the feeder's continuation never runs on the waker's thread). Under the pool's lock.</summary>
    public ValueTask ArmWake()
    {
        _wake.Reset();
        _armed = true;
        return new ValueTask(this, _wake.Version);
    }

    /// <summary>Whether the feeder was woken and has not run yet: it will take waiting messages when it does. Under the pool's lock.</summary>
    public bool IsWakePending { get; private set; }

    /// <summary>Wakes the batch's feeder, if it waits. Under the pool's lock.</summary>
    public void Wake()
    {
        if (_armed)
        {
            _armed = false;
            IsWakePending = true;
            _wake.SetResult(true);
        }
    }

    /// <summary>The feeder runs (it looks at the queue next). Under the pool's lock.</summary>
    public void Awake() => IsWakePending = false;

    void IValueTaskSource.GetResult(short token) => _wake.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _wake.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _wake.OnCompleted(continuation, state, token, flags);
}
