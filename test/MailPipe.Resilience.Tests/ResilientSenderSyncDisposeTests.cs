using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// <see cref="ResilientSmtpSender"/> disposed synchronously (<c>using var</c>, a DI container's <c>Dispose</c>), by the
/// model of <c>SmtpSender.Dispose</c>: the retry waits end at once, the inner sender's own <c>Dispose</c> runs before it
/// returns, its <c>DisposeAsync</c> in the background (never waited for by Dispose, its failure kept for a later
/// <c>DisposeAsync</c>), and an attempt in flight is never cancelled by the disposal: its caller gets its true result.
/// </summary>
public sealed class ResilientSenderSyncDisposeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dispose_disposes_the_inner_sender_with_its_Dispose_and_ends_a_retry_delay_and_DisposeAsync_awaits_its_DisposeAsync()
    {
        var inner = new DisposableInner();
        var sender = Resilient(inner);
        var send = sender.SendAsync(Message("busy@example.test"));
        send.IsCompleted.Should().BeFalse("the retry waits for its delay on a clock that does not move");

        using (sender)
        {
        }

        inner.Disposed.Should().Be(1, "its Dispose runs before the wrapper's returns");
        await send.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<ObjectDisposedException>();
        sender.Dispose();
        await sender.DisposeAsync().AsTask().WaitAsync(Limit);
        inner.Disposed.Should().Be(1, "a second Dispose does nothing");
        inner.DisposedAsync.Should().Be(1, "then its DisposeAsync, once, for the end of that disposal");
        inner.Completed.Should().BeTrue("DisposeAsync after Dispose completes when the inner DisposeAsync did");
    }

    [Fact]
    public async Task Dispose_around_an_inner_sender_that_is_only_IAsyncDisposable_returns_without_waiting_for_its_DisposeAsync()
    {
        var inner = new AsyncOnlyInner();
        var sender = Resilient(inner);

        // On a thread-pool thread, so that a Dispose that waited for the held DisposeAsync fails the test instead of hanging it.
        await Task.Run(sender.Dispose).WaitAsync(Limit);
        await inner.DisposeStarted.WaitAsync(Limit);

        inner.Completed.Should().BeFalse("the inner DisposeAsync is held, and Dispose returned");
        var disposal = sender.DisposeAsync().AsTask();
        disposal.IsCompleted.Should().BeFalse("DisposeAsync awaits the inner DisposeAsync that Dispose started");
        inner.Release.SetResult();
        await disposal.WaitAsync(Limit);
        inner.DisposedAsync.Should().Be(1);
        inner.Completed.Should().BeTrue();
    }

    [Fact]
    public async Task A_failure_of_the_inner_DisposeAsync_started_by_Dispose_is_kept_for_a_later_DisposeAsync()
    {
        var inner = new AsyncOnlyInner { Failure = new InvalidOperationException("inner disposal failed") };
        var sender = Resilient(inner);
        inner.Release.SetResult();

        sender.Invoking(s => s.Dispose()).Should().NotThrow();

        (await sender.Awaiting(s => s.DisposeAsync().AsTask().WaitAsync(Limit)).Should().ThrowAsync<InvalidOperationException>())
            .WithMessage("inner disposal failed");
    }

    /// <summary>
    /// An attempt the inner sender still holds (its batch in flight) when the wrapper is disposed: the disposal does
    /// not cancel it (before, the wrapper's disposal token reached the attempt, and a cancelled pooled message is cut
    /// off as Unknown); the caller gets the inner sender's answer. The retry waits still end at once (the token is
    /// cancelled at the attempt's end).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task An_attempt_in_flight_at_the_disposal_is_not_cancelled_and_its_caller_gets_the_inner_result(bool synchronously)
    {
        var inner = new HoldingInner();
        var sender = Resilient(inner);
        var send = sender.SendAsync(Message("held@example.test"));
        var token = await inner.Attempt.WaitAsync(Limit);

        if (synchronously)
        {
            sender.Dispose();
        }

        // Completes once the disposal's cancellation has run (this fake's DisposeAsync waits for nothing).
        await sender.DisposeAsync().AsTask().WaitAsync(Limit);
        token.IsCancellationRequested.Should().BeFalse("the attempt is in flight: the inner sender's disposal decides it");
        send.IsCompleted.Should().BeFalse();

        inner.Release.SetResult();
        var result = await send.WaitAsync(Limit);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the inner sender's answer, not a cancellation");
        inner.Calls.Should().Be(1, "no retry after the disposal");
        inner.Disposed.Should().BeTrue();
    }

    /// <summary>
    /// End to end, the standard pipeline around a real pooled sender (the DI composition): the server holds its reply
    /// to the end of data (the worst moment: a cancellation there makes the message Unknown). Dispose returns while it
    /// is held; when the server answers, the caller gets Accepted; DisposeAsync then completes when the connection got QUIT.
    /// </summary>
    [Fact]
    public async Task Dispose_around_a_pooled_sender_holding_an_end_of_data_reply_returns_and_the_caller_gets_Accepted()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var endOfDataReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var quit = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var serving = ServeOneAsync();
        var inner = new SmtpSender(new SmtpSenderOptions
        {
            Host = "127.0.0.1",
            Port = ((IPEndPoint)listener.LocalEndpoint).Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            DisposeTimeout = TimeSpan.FromMinutes(5),
        });
        var sender = (ResilientSmtpSender)inner.WithStandardResilience(o => { o.AttemptTimeout.Timeout = TimeSpan.FromMinutes(5); o.TotalRequestTimeout.Timeout = TimeSpan.FromMinutes(10); }, new FakeTimeProvider());

        var send = sender.SendAsync(Message("held@example.test"));
        await endOfDataReceived.Task.WaitAsync(Limit);

        // On a thread-pool thread, so that a Dispose that waited for the held reply fails the test instead of hanging it.
        await Task.Run(sender.Dispose).WaitAsync(Limit);
        send.IsCompleted.Should().BeFalse("Dispose did not wait for the attempt in flight, nor cancel it");
        await sender.Awaiting(s => s.SendAsync(Message("late@example.test"))).Should().ThrowAsync<ObjectDisposedException>();
        var disposal = sender.DisposeAsync().AsTask();

        answer.SetResult();
        var result = await send.WaitAsync(Limit);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, $"the server accepted it within DisposeTimeout ({result.Exception?.Message})");
        result.Attempts.Should().Be(1);
        await disposal.WaitAsync(Limit);
        quit.Task.IsCompleted.Should().BeTrue("DisposeAsync completes when the connection is closed, after its QUIT");
        inner.GetStatistics().Discarded.Should().Be(1);
        await stop.CancelAsync();
        listener.Stop();
        await serving;

        async Task ServeOneAsync()
        {
            try
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                var stream = client.GetStream();
                using var reader = new StreamReader(stream, Encoding.ASCII);
                async Task Say(string line) => await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\r\n"), stop.Token);
                await Say("220 test ESMTP");
                while (await reader.ReadLineAsync(stop.Token) is { } line)
                {
                    switch (line.Split(' ', ':')[0].ToUpperInvariant())
                    {
                        case "EHLO": await Say("250 test"); break;
                        case "DATA":
                            await Say("354 go");
                            while (await reader.ReadLineAsync(stop.Token) is { } content && content != ".")
                            {
                            }

                            endOfDataReceived.TrySetResult();
                            await answer.Task.WaitAsync(stop.Token);
                            await Say("250 queued");
                            break;
                        case "QUIT":
                            quit.TrySetResult();
                            await Say("221 bye");
                            return;
                        default: await Say("250 ok"); break;
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or SocketException or ObjectDisposedException)
            {
            }
        }
    }

    private static SmtpMessage Message(string recipient) => SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", recipient), "Subject: s\r\n\r\nb\r\n"u8.ToArray());

    private static ResilientSmtpSender Resilient(ISmtpSender inner) => new(
        inner,
        SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(30), UseJitter = false, ThrottledDelay = TimeSpan.Zero }, new FakeTimeProvider()));

    /// <summary>Refuses every recipient with 450 (so the message waits for a retry); only IAsyncDisposable, its DisposeAsync held until <see cref="Release"/>.</summary>
    private class AsyncOnlyInner : ISmtpSender
    {
        private readonly TaskCompletionSource _disposeStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _disposed;
        private int _disposedAsync;
        private volatile bool _completed;

        public int Disposed => Volatile.Read(ref _disposed);

        public int DisposedAsync => Volatile.Read(ref _disposedAsync);

        public bool Completed => _completed;

        public Task DisposeStarted => _disposeStarted.Task;

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Exception? Failure { get; init; }

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
            _disposeStarted.TrySetResult();
            await Release.Task;
            _completed = true;
            if (Failure is not null)
            {
                throw Failure;
            }
        }

        protected void CountDispose() => Interlocked.Increment(ref _disposed);
    }

    /// <summary>An inner sender that is also IDisposable, as SmtpSender is.</summary>
    private sealed class DisposableInner : AsyncOnlyInner, IDisposable
    {
        public DisposableInner() => Release.SetResult();

        public void Dispose() => CountDispose();
    }

    /// <summary>Holds its one attempt until <see cref="Release"/>, then accepts, as a pooled batch in flight that the server answers; its disposal waits for nothing.</summary>
    private sealed class HoldingInner : ISmtpSender
    {
        private readonly TaskCompletionSource<CancellationToken> _attempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;
        private volatile bool _disposed;

        public Task<CancellationToken> Attempt => _attempt.Task;

        public bool Disposed => _disposed;

        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public int Calls => Volatile.Read(ref _calls);

        public async Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref _calls);
            _attempt.TrySetResult(cancellationToken);
            await Release.Task;
            return SmtpSendResult.Accepted(message.Envelope);
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync()
        {
            _disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
