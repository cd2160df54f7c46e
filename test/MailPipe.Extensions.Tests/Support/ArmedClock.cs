using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>
/// A <see cref="FakeTimeProvider"/> that tells when one of its timers is armed with a given due time (e.g. a
/// <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> on a source made with this clock), so that a test
/// advances the clock only once the deadline it is about exists.
/// </summary>
public sealed class ArmedClock(TimeSpan watchedDueTime) : FakeTimeProvider
{
    private readonly TaskCompletionSource _armed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when a timer of this clock is set to fire after the watched due time.</summary>
    public Task Armed => _armed.Task;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        Watch(dueTime);
        return new Timer(this, base.CreateTimer(callback, state, dueTime, period));
    }

    private void Watch(TimeSpan dueTime)
    {
        if (dueTime == watchedDueTime)
        {
            _armed.TrySetResult();
        }
    }

    private sealed class Timer(ArmedClock clock, ITimer inner) : ITimer
    {
        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var changed = inner.Change(dueTime, period);
            clock.Watch(dueTime);
            return changed;
        }

        public void Dispose() => inner.Dispose();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
