namespace MailPipe.Tests.Pooling;

/// <summary>
/// Callers whose messages were in a worker's first batch but not yet pulled by the session when that batch was cancelled
/// (the only caller in flight cancelled, or DisposeAsync's timeout) must still complete.
/// </summary>
public class SmtpSenderOrphanTests
{
    [Fact]
    public async Task When_the_first_caller_cancels_on_the_wire_the_callers_queued_behind_it_still_complete()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var data = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task, DataGate = data.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16));
        var messages = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("orphan", i)).ToArray();
        using var cts = new CancellationTokenSource();

        var tasks = messages.Select((m, i) => sender.SendAsync(m.Message, i == 0 ? cts.Token : default)).ToArray();
        greeting.SetResult();
        await server.DataReceived.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();
        await tasks[0].Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        data.SetResult();

        for (var i = 1; i < tasks.Length; i++)
        {
            var completed = await Task.WhenAny(tasks[i], Task.Delay(TimeSpan.FromSeconds(30))) == tasks[i];
            completed.Should().BeTrue($"caller {i} was never written and must get a result (sent on another connection or NotSent)");
            (await tasks[i]).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            server.CountOf(messages[i].MessageId).Should().Be(1);
        }

        server.CountOf(messages[0].MessageId).Should().Be(0);
    }

    [Fact]
    public async Task DisposeAsync_completes_the_callers_of_a_batch_that_were_not_pulled_yet()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var data = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task, DataGate = data.Task };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16);
        options.DisposeTimeout = TimeSpan.FromMilliseconds(200);
        var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("orphan-dispose", i)).ToArray();

        var tasks = messages.Select(m => sender.SendAsync(m.Message)).ToArray();
        greeting.SetResult();
        await server.DataReceived.WaitAsync(TimeSpan.FromSeconds(30));
        await sender.DisposeAsync();

        for (var i = 0; i < tasks.Length; i++)
        {
            var completed = await Task.WhenAny(tasks[i], Task.Delay(TimeSpan.FromSeconds(30))) == tasks[i];
            completed.Should().BeTrue($"caller {i} must learn what became of its message after DisposeAsync");
        }

        // The callers behind the first were never written: as every message still waiting at disposal.
        await tasks[1].Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        await tasks[2].Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        server.Received.Should().BeEmpty();

        data.SetResult();
    }
}
