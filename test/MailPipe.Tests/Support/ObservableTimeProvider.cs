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
    private readonly List<(TimeSpan DueTime, int Count, TaskCompletionSource Done)> _waiters = [];
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

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ObservedTimer(this, base.CreateTimer(
            s =>
            {
                Interlocked.Increment(ref _fired);
                callback(s);
            },
            state,
            dueTime,
            period));
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

    private sealed class ObservedTimer(ObservableTimeProvider owner, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            owner.OnArmed(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
