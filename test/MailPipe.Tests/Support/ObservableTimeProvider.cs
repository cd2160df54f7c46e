using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Support;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that tells the test when a timer is armed with a given due time, so that the test
/// advances the clock only once the code under test is really waiting (no race, no real delay).
/// </summary>
internal sealed class ObservableTimeProvider : FakeTimeProvider
{
    private readonly Lock _lock = new();
    private readonly Dictionary<TimeSpan, int> _armed = [];
    private readonly Dictionary<TimeSpan, int> _pending = [];
    private readonly List<(TimeSpan DueTime, int Count, TaskCompletionSource Done)> _waiters = [];
    private readonly List<(TimeSpan DueTime, TaskCompletionSource Done)> _pendingWaiters = [];
    private int _fired;

    /// <summary>How many times a timer's callback has run (inside <see cref="FakeTimeProvider.Advance"/>, on the advancing thread).</summary>
    public int FiredCount => Volatile.Read(ref _fired);

    /// <summary>How many times a timer was armed (created or changed) with <paramref name="dueTime"/>.</summary>
    public int ArmedCount(TimeSpan dueTime)
    {
        lock (_lock)
        {
            return _armed.GetValueOrDefault(dueTime);
        }
    }

    /// <summary>Completes once a timer has been armed with <paramref name="dueTime"/> at least <paramref name="count"/> times in all.</summary>
    public Task WaitUntilArmedAsync(TimeSpan dueTime, int count)
    {
        lock (_lock)
        {
            if (_armed.GetValueOrDefault(dueTime) >= count)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((dueTime, count, done));
            return done.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        }
    }

    /// <summary>
    /// Completes once a timer armed with <paramref name="dueTime"/> is pending: armed and since then neither fired, changed
    /// nor disposed. For a deadline that may or may not have been armed (and stopped) before, such as a reply read's,
    /// which is armed only when the read has to wait: counting arms would race with the reply's arrival.
    /// </summary>
    public Task WaitUntilPendingAsync(TimeSpan dueTime)
    {
        lock (_lock)
        {
            if (_pending.GetValueOrDefault(dueTime) > 0)
            {
                return Task.CompletedTask;
            }

            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _pendingWaiters.Add((dueTime, done));
            return done.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ObservedTimer(this);

        // Pending before the inner timer exists: a due time of zero may fire inside CreateTimer, which must end it.
        timer.SetPending(dueTime, period);
        timer.Inner = base.CreateTimer(
            s =>
            {
                Interlocked.Increment(ref _fired);
                timer.OnFired();
                callback(s);
            },
            state,
            dueTime,
            period);
        OnArmed(dueTime);
        return timer;
    }

    private void OnArmed(TimeSpan dueTime)
    {
        if (dueTime == Timeout.InfiniteTimeSpan)
        {
            return;
        }

        List<TaskCompletionSource> ready = [];
        lock (_lock)
        {
            var count = _armed.GetValueOrDefault(dueTime) + 1;
            _armed[dueTime] = count;
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].DueTime == dueTime && _waiters[i].Count <= count)
                {
                    ready.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var done in ready)
        {
            done.TrySetResult();
        }
    }

    /// <summary>Moves one timer's pending due time from <paramref name="from"/> to <paramref name="to"/> (null: not pending).</summary>
    private void MovePending(TimeSpan? from, TimeSpan? to)
    {
        List<TaskCompletionSource> ready = [];
        lock (_lock)
        {
            if (from is { } old)
            {
                _pending[old] = _pending.GetValueOrDefault(old) - 1;
            }

            if (to is { } due)
            {
                _pending[due] = _pending.GetValueOrDefault(due) + 1;
                for (var i = _pendingWaiters.Count - 1; i >= 0; i--)
                {
                    if (_pendingWaiters[i].DueTime == due)
                    {
                        ready.Add(_pendingWaiters[i].Done);
                        _pendingWaiters.RemoveAt(i);
                    }
                }
            }
        }

        foreach (var done in ready)
        {
            done.TrySetResult();
        }
    }

    private sealed class ObservedTimer(ObservableTimeProvider owner) : ITimer
    {
        private readonly Lock _lock = new();
        private TimeSpan? _pendingDue;
        private bool _periodic;

        public ITimer Inner { get; set; } = null!;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            SetPending(dueTime, period);
            var changed = Inner.Change(dueTime, period);
            owner.OnArmed(dueTime);
            return changed;
        }

        public void Dispose()
        {
            SetPending(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            Inner.Dispose();
        }

        public ValueTask DisposeAsync()
        {
            SetPending(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            return Inner.DisposeAsync();
        }

        /// <summary>Armed with <paramref name="dueTime"/> (pending unless infinite or zero), or stopped.</summary>
        public void SetPending(TimeSpan dueTime, TimeSpan period)
        {
            TimeSpan? from;
            TimeSpan? to = dueTime == Timeout.InfiniteTimeSpan || dueTime == TimeSpan.Zero ? null : dueTime;
            lock (_lock)
            {
                from = _pendingDue;
                _pendingDue = to;
                _periodic = period != Timeout.InfiniteTimeSpan && period != TimeSpan.Zero;
            }

            owner.MovePending(from, to);
        }

        /// <summary>The callback runs: a one-shot timer is no longer pending (a periodic one stays armed).</summary>
        public void OnFired()
        {
            TimeSpan? from;
            lock (_lock)
            {
                if (_periodic)
                {
                    return;
                }

                from = _pendingDue;
                _pendingDue = null;
            }

            owner.MovePending(from, null);
        }
    }
}
