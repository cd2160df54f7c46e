using System.Text;
using MailPipe.Tests.Support;

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

    [Fact]
    public async Task A_content_source_that_throws_OperationCanceledException_of_its_own_fails_only_its_message_and_the_pool_goes_on()
    {
        // A source's own cancellation (an HTTP body whose request was aborted, a timed-out read), no token of the caller's
        // or the sender's: the session ends the batch with it, which the pool took for nobody's and left its worker dead.
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16));
        var source = new FailingStream(Encoding.ASCII.GetBytes("Subject: given up\r\n\r\nThe first part.\r\n"), new TaskCanceledException("The source gave up."));
        var failing = SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", "rcpt-orphan-source@example.test"), source);
        var messages = Enumerable.Range(0, 2).Select(i => PoolTestMessages.Create("orphan-source", i)).ToArray();

        var tasks = new[] { sender.SendAsync(failing) }.Concat(messages.Select(m => sender.SendAsync(m.Message))).ToArray();
        greeting.SetResult();

        for (var i = 0; i < tasks.Length; i++)
        {
            var completed = await Task.WhenAny(tasks[i], Task.Delay(TimeSpan.FromSeconds(30))) == tasks[i];
            completed.Should().BeTrue($"caller {i} must get a result");
        }

        (await tasks[0]).Outcome.Should().Be(SmtpSendOutcome.NotSent);
        for (var i = 1; i < tasks.Length; i++)
        {
            (await tasks[i]).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            server.CountOf(messages[i - 1].MessageId).Should().Be(1);
        }

        var later = PoolTestMessages.Create("orphan-source-later", 0);
        var next = sender.SendAsync(later.Message);
        (await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(30))) == next).Should().BeTrue("the pool must keep its connection slot");
        (await next).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.Received.Should().HaveCount(3, "the failing message was never ended");
    }

    [Fact]
    public async Task A_caller_cancelled_while_its_message_waits_in_a_batch_that_is_then_cancelled_gets_OperationCanceledException()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var data = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task, DataGate = data.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16));
        var messages = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("orphan-cancelled", i)).ToArray();
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();

        var tasks = messages.Select((m, i) => sender.SendAsync(m.Message, i switch { 0 => first.Token, 1 => second.Token, _ => default })).ToArray();
        greeting.SetResult();
        await server.DataReceived.WaitAsync(TimeSpan.FromSeconds(30));

        // Caller 1's message is the batch's but not the session's yet: its cancellation is noticed when the batch lets it go.
        await second.CancelAsync();
        await first.CancelAsync();
        await tasks[0].Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        data.SetResult();

        (await Task.WhenAny(tasks[1], Task.Delay(TimeSpan.FromSeconds(30))) == tasks[1]).Should().BeTrue("caller 1 must learn that its message was not sent");
        await tasks[1].Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        (await Task.WhenAny(tasks[2], Task.Delay(TimeSpan.FromSeconds(30))) == tasks[2]).Should().BeTrue("caller 2 was never written");
        (await tasks[2]).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(messages[0].MessageId).Should().Be(0);
        server.CountOf(messages[1].MessageId).Should().Be(0);
        server.CountOf(messages[2].MessageId).Should().Be(1);
    }
}
