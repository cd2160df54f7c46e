namespace MailPipe.Tests.Pooling;

/// <summary>
/// The shared sender disposed synchronously (<see cref="IDisposable"/>): <c>using var sender = new SmtpSender(...)</c>,
/// and a DI container disposed with <c>Dispose</c>. The same rules as <c>DisposeAsync</c>, the calling thread blocked.
/// </summary>
public sealed class SmtpSenderSyncDisposeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Dispose_at_the_end_of_a_using_block_sends_QUIT_on_idle_connections_and_later_calls_throw()
    {
        await using var server = new LoopbackSmtpServer();
        SmtpSender disposed;
        int open;
        using (var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 2)))
        {
            var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => sender.SendAsync(PoolTestMessages.Create("sync-quit", i).Message)));
            results.Should().OnlyContain(r => r.IsAccepted);
            open = (int)sender.GetStatistics().Opened;
            disposed = sender;
        }

        disposed.GetStatistics().Discarded.Should().Be(open, "Dispose returned once every connection was closed");
        await server.WaitUntilAsync(s => s.Quits == open);
        server.Quits.Should().Be(open, "every idle connection got QUIT, as with DisposeAsync").And.BeGreaterThan(0);
        await disposed.Awaiting(s => s.SendAsync(PoolTestMessages.Create("sync-quit", 99).Message)).Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task Dispose_fails_queued_callers_with_ObjectDisposedException_and_is_idempotent()
    {
        await using var server = new LoopbackSmtpServer { Silent = true };
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var queued = Enumerable.Range(0, 3).Select(i => sender.SendAsync(PoolTestMessages.Create("sync-dispose", i).Message)).ToArray();

        await Task.Run(sender.Dispose).WaitAsync(Limit);
        sender.Dispose();
        await sender.DisposeAsync();

        queued.Should().OnlyContain(t => t.IsCompleted, "Dispose returns when the disposal is done");
        foreach (var task in queued)
        {
            await task.Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        }
    }

    /// <summary>
    /// A batch held by the server past <see cref="SmtpSenderOptions.DisposeTimeout"/>; DisposeAsync and many Dispose calls
    /// from thread-pool threads (more than the machine's cores) race. Each Dispose returns only when the disposal is over
    /// (the held callers have their answer), whichever call started it; nothing deadlocks.
    /// </summary>
    [Fact]
    public async Task Dispose_from_many_thread_pool_threads_racing_DisposeAsync_waits_for_the_one_disposal_and_does_not_deadlock()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { DataGate = gate.Task };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(200);
        var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create("sync-race", i)).ToArray();
        var tasks = messages.Select(m => sender.SendAsync(m.Message)).ToArray();
        await server.DataReceived.WaitAsync(Limit);

        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var disposers = Enumerable.Range(0, (Environment.ProcessorCount * 2) + 2).Select(_ => Task.Run(async () =>
        {
            await start.Task;
            sender.Dispose();
            return tasks.All(t => t.IsCompleted);
        })).ToArray();
        var asyncDisposal = Task.Run(async () =>
        {
            await start.Task;
            await sender.DisposeAsync();
            return tasks.All(t => t.IsCompleted);
        });
        start.SetResult();

        var finished = await Task.WhenAll(disposers.Append(asyncDisposal)).WaitAsync(Limit);
        gate.SetResult();

        finished.Should().OnlyContain(done => done, "every Dispose and DisposeAsync returns only when the held callers have their answer");
        foreach (var task in tasks)
        {
            await task.Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        }

        messages.Should().OnlyContain(m => server.CountOf(m.MessageId) == 0);
    }

    /// <summary>
    /// The classic sync-over-async deadlock: Dispose called on a thread whose SynchronizationContext never runs what is
    /// posted to it (a UI thread blocked in Dispose). QUIT on the idle connection needs I/O continuations: none may need
    /// the caller's context.
    /// </summary>
    [Fact]
    public async Task Dispose_on_a_thread_whose_SynchronizationContext_never_runs_posts_does_not_deadlock()
    {
        await using var server = new LoopbackSmtpServer();
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        (await sender.SendAsync(PoolTestMessages.Create("sync-context", 0).Message)).IsAccepted.Should().BeTrue();
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
        context.Posts.Should().Be(0, "nothing of the disposal was posted to the caller's context");
        await server.WaitUntilAsync(s => s.Quits == 1);
        server.Quits.Should().Be(1);
    }

    private sealed class NeverRunningContext : SynchronizationContext
    {
        private int _posts;

        public int Posts => Volatile.Read(ref _posts);

        public override void Post(SendOrPostCallback d, object? state) => Interlocked.Increment(ref _posts);

        public override void Send(SendOrPostCallback d, object? state) => Interlocked.Increment(ref _posts);
    }
}
