using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// <see cref="ResilientSmtpSender"/> disposed synchronously (<c>using var</c>, a DI container's <c>Dispose</c>): the
/// inner sender is disposed (its own <c>Dispose</c> when it has one, else its <c>DisposeAsync</c>, waited for) and the
/// messages waiting for a retry end as with <c>DisposeAsync</c>.
/// </summary>
public sealed class ResilientSenderSyncDisposeTests
{
    [Fact]
    public async Task Dispose_disposes_the_inner_sender_synchronously_and_ends_a_retry_delay()
    {
        var inner = new DisposableInner();
        var sender = Resilient(inner);
        var send = sender.SendAsync(Message("busy@example.test"));
        send.IsCompleted.Should().BeFalse("the retry waits for its delay on a clock that does not move");

        using (sender)
        {
        }

        inner.Disposed.Should().Be(1, "its Dispose, not DisposeAsync");
        inner.DisposedAsync.Should().Be(0);
        await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<ObjectDisposedException>();
        sender.Dispose();
        await sender.DisposeAsync();
        inner.Disposed.Should().Be(1, "a second Dispose, or a DisposeAsync after it, does nothing");
        inner.DisposedAsync.Should().Be(0);
    }

    [Fact]
    public void Dispose_of_a_sender_around_an_inner_one_that_is_only_IAsyncDisposable_waits_for_its_DisposeAsync()
    {
        var inner = new AsyncOnlyInner();
        var sender = Resilient(inner);

        sender.Dispose();

        inner.DisposedAsync.Should().Be(1);
        inner.Completed.Should().BeTrue("Dispose returned after the inner DisposeAsync was done");
    }

    private static SmtpMessage Message(string recipient) => SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", recipient), "Subject: s\r\n\r\nb\r\n"u8.ToArray());

    private static ResilientSmtpSender Resilient(ISmtpSender inner) => new(
        inner,
        SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(30), UseJitter = false, ThrottledDelay = TimeSpan.Zero }, new FakeTimeProvider()));

    /// <summary>Refuses every recipient with 450 (so the message waits for a retry); only IAsyncDisposable; counts its disposals.</summary>
    private class AsyncOnlyInner : ISmtpSender
    {
        private int _disposed;
        private int _disposedAsync;

        public int Disposed => Volatile.Read(ref _disposed);

        public int DisposedAsync => Volatile.Read(ref _disposedAsync);

        public bool Completed { get; private set; }

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(Disposed + DisposedAsync > 0, this);
            return Task.FromResult(SmtpSendResult.Create(message.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(message.Envelope.Recipients[0], new SmtpReply(450, "4.2.0 busy"))], null, null));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public async ValueTask DisposeAsync()
        {
            Interlocked.Increment(ref _disposedAsync);
            await Task.Yield();
            await Task.Delay(10); // really asynchronous: Dispose must wait for it, not just start it
            Completed = true;
        }

        protected void CountDispose() => Interlocked.Increment(ref _disposed);
    }

    /// <summary>An inner sender that is also IDisposable, as SmtpSender is.</summary>
    private sealed class DisposableInner : AsyncOnlyInner, IDisposable
    {
        public void Dispose() => CountDispose();
    }
}
