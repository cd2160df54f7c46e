using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// The shared sender disposed synchronously (<see cref="IDisposable"/>): <c>using var sender = new SmtpSender(...)</c>,
/// and a DI container disposed with <c>Dispose</c>. Dispose starts the disposal of <c>DisposeAsync</c> without waiting
/// for it (as <c>NpgsqlDataSource.Dispose</c>, no sync-over-async): new sends and the messages waiting for a connection
/// fail before it returns, a batch in flight goes on to its true result, and a later <c>DisposeAsync</c> awaits the
/// end of that same disposal. The batches are held by the server (a gate), never by time: the assertions do not
/// depend on how long anything takes (the 30 s limit only turns a hang into a failure).
/// </summary>
public sealed class SmtpSenderSyncDisposeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dispose_at_the_end_of_a_using_block_makes_later_calls_throw_and_DisposeAsync_then_completes_when_the_idle_connections_got_QUIT()
    {
        await using var server = new LoopbackSmtpServer();
        SmtpSender disposed;
        using (var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 2)))
        {
            var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => sender.SendAsync(PoolTestMessages.Create("sync-quit", i).Message)));
            results.Should().OnlyContain(r => r.IsAccepted);
            disposed = sender;
        }

        await disposed.Awaiting(s => s.SendAsync(PoolTestMessages.Create("sync-quit", 99).Message)).Should().ThrowAsync<ObjectDisposedException>("Dispose marks the sender disposed before it returns");
        await disposed.DisposeAsync().AsTask().WaitAsync(Limit);

        var statistics = disposed.GetStatistics();
        statistics.Discarded.Should().Be(statistics.Opened, "DisposeAsync after Dispose completes when that disposal closed every connection").And.BeGreaterThan(0);
        await server.WaitUntilAsync(s => s.Quits == statistics.Opened);
        server.Quits.Should().Be((int)statistics.Opened, "every idle connection got QUIT, as with DisposeAsync alone");
    }

    /// <summary>
    /// One connection, one message per batch: the first message is held by the server before its 354 (its end of data
    /// not written), two more wait for the connection. Dispose returns while the server still holds the batch, the
    /// waiting callers have failed before it returns, and the held caller gets Accepted once the server answers
    /// (within <see cref="SmtpSenderOptions.DisposeTimeout"/>): it is never cut off as an abort would.
    /// </summary>
    [Fact]
    public async Task Dispose_returns_without_waiting_for_a_held_batch_whose_caller_still_gets_Accepted_while_waiting_callers_get_ObjectDisposedException()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { DataGate = gate.Task };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 1);
        options.DisposeTimeout = TimeSpan.FromMinutes(5);
        var sender = new SmtpSender(options);
        var held = PoolTestMessages.Create("sync-held", 0);
        var heldSend = sender.SendAsync(held.Message);
        await server.DataReceived.WaitAsync(Limit);
        var waiting = Enumerable.Range(1, 2).Select(i => sender.SendAsync(PoolTestMessages.Create("sync-held", i).Message)).ToArray();
        sender.GetStatistics().PendingRequests.Should().Be(2, "the one connection's batch has no room for them");

        // On a thread-pool thread, so that a Dispose that waited for the held batch fails the test instead of hanging it.
        await Task.Run(sender.Dispose).WaitAsync(Limit);

        waiting.Should().OnlyContain(t => t.IsFaulted, "the messages waiting for a connection fail before Dispose returns");
        foreach (var task in waiting)
        {
            await task.Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        }

        heldSend.IsCompleted.Should().BeFalse("the server still holds the batch: Dispose did not wait for it, nor cut it");
        var disposal = sender.DisposeAsync().AsTask();
        disposal.IsCompleted.Should().BeFalse("DisposeAsync awaits the batch in flight");
        await sender.Awaiting(s => s.SendAsync(PoolTestMessages.Create("sync-held", 9).Message)).Should().ThrowAsync<ObjectDisposedException>();

        gate.SetResult();
        var result = await heldSend.WaitAsync(Limit);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the server answered within DisposeTimeout: the caller learns the truth");
        server.CountOf(held.MessageId).Should().Be(1);
        await disposal.WaitAsync(Limit);
        var statistics = sender.GetStatistics();
        statistics.Discarded.Should().Be(statistics.Opened, "DisposeAsync completed when the connection was closed").And.Be(1);
        await server.WaitUntilAsync(s => s.Quits == 1);
        server.Quits.Should().Be(1, "the batch's connection got QUIT when the batch was over");
    }

    /// <summary>
    /// Many Dispose calls from thread-pool threads (more than the machine's cores) race DisposeAsync calls while the
    /// server holds a batch: every Dispose returns while it is held, no DisposeAsync completes before it ends, then all
    /// complete, and the one disposal ran once (one QUIT).
    /// </summary>
    [Fact]
    public async Task Dispose_from_many_thread_pool_threads_racing_DisposeAsync_returns_at_once_and_DisposeAsync_awaits_the_one_disposal()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { DataGate = gate.Task };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.DisposeTimeout = TimeSpan.FromMinutes(5);
        var sender = new SmtpSender(options);
        var held = PoolTestMessages.Create("sync-race", 0);
        var heldSend = sender.SendAsync(held.Message);
        await server.DataReceived.WaitAsync(Limit);

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var disposers = Enumerable.Range(0, (Environment.ProcessorCount * 2) + 2).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            sender.Dispose();
        })).ToArray();
        var asyncDisposals = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            await sender.DisposeAsync();
        })).ToArray();
        start.SetResult();

        await Task.WhenAll(disposers).WaitAsync(Limit);
        heldSend.IsCompleted.Should().BeFalse("every Dispose returned while the server held the batch");
        asyncDisposals.Should().OnlyContain(t => !t.IsCompleted, "no DisposeAsync completes while a batch is in flight");

        gate.SetResult();
        await Task.WhenAll(asyncDisposals).WaitAsync(Limit);
        heldSend.IsCompleted.Should().BeTrue("DisposeAsync completed after the batch");
        (await heldSend).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(held.MessageId).Should().Be(1);
        await server.WaitUntilAsync(s => s.Quits == 1);
        server.Quits.Should().Be(1, "one disposal: one QUIT on the one connection");
        sender.GetStatistics().Discarded.Should().Be(1);
    }

    /// <summary>
    /// The classic sync-over-async deadlock: Dispose called on a thread whose SynchronizationContext never runs what is
    /// posted to it (a UI thread), with a batch held by the server. Dispose returns on that thread; nothing of the
    /// disposal is posted to its context; the held caller gets Accepted and DisposeAsync awaited elsewhere completes.
    /// </summary>
    [Fact]
    public async Task Dispose_on_a_thread_whose_SynchronizationContext_never_runs_posts_returns_and_the_disposal_completes()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { DataGate = gate.Task };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.DisposeTimeout = TimeSpan.FromMinutes(5);
        var sender = new SmtpSender(options);
        var heldSend = sender.SendAsync(PoolTestMessages.Create("sync-context", 0).Message);
        await server.DataReceived.WaitAsync(Limit);
        var context = new NeverRunningContext();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            SynchronizationContext.SetSynchronizationContext(context);
            try
            {
                sender.Dispose();
                done.SetResult();
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        { IsBackground = true };

        thread.Start();
        await done.Task.WaitAsync(Limit);

        heldSend.IsCompleted.Should().BeFalse("Dispose returned while the server held the batch");
        gate.SetResult();
        (await heldSend.WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await sender.DisposeAsync().AsTask().WaitAsync(Limit);
        context.Posts.Should().Be(0, "nothing of the disposal was posted to the caller's context");
        var statistics = sender.GetStatistics();
        statistics.Discarded.Should().Be(statistics.Opened);
        await server.WaitUntilAsync(s => s.Quits == statistics.Opened);
        server.Quits.Should().Be((int)statistics.Opened);
    }

    /// <summary>
    /// Nobody awaits what Dispose leaves running: a failure there (here the pool's logger throwing as an idle connection
    /// is closed) is logged as <see cref="MailPipeEventId.PoolDisposalFailed"/>, not thrown from Dispose nor left
    /// unobserved, and the disposal still ends (DisposeAsync completes without throwing).
    /// </summary>
    [Fact]
    public async Task A_failure_of_the_disposal_left_running_by_Dispose_is_logged_and_the_disposal_still_ends()
    {
        await using var server = new LoopbackSmtpServer();
        var logs = new ThrowingOnDiscardLoggerFactory();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.LoggerFactory = logs;
        var sender = new SmtpSender(options);
        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue();
        sender.GetStatistics().Idle.Should().Be(1, "the check leaves its connection idle: the disposal closes it");

        sender.Invoking(s => s.Dispose()).Should().NotThrow();
        await sender.DisposeAsync().AsTask().WaitAsync(Limit);

        logs.Inner.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.PoolDisposalFailed)
            .Which.Exception.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be(ThrowingOnDiscardLoggerFactory.Failure);
    }

    private sealed class NeverRunningContext : SynchronizationContext
    {
        private int _posts;

        public int Posts => Volatile.Read(ref _posts);

        public override void Post(SendOrPostCallback d, object? state) => Interlocked.Increment(ref _posts);

        public override void Send(SendOrPostCallback d, object? state) => Interlocked.Increment(ref _posts);
    }

    /// <summary>Keeps every entry, but throws when the pool logs a closed connection (a faulty logging provider).</summary>
    private sealed class ThrowingOnDiscardLoggerFactory : ILoggerFactory
    {
        public const string Failure = "logging provider failed";

        public ListLoggerProvider Inner { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(Inner.CreateLogger(categoryName));

        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public void Dispose()
        {
        }

        private sealed class Logger(ILogger inner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => inner.BeginScope(state);

            public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                inner.Log(logLevel, eventId, state, exception, formatter);
                if (eventId.Id == MailPipeEventId.PoolConnectionDiscarded)
                {
                    throw new InvalidOperationException(Failure);
                }
            }
        }
    }
}
