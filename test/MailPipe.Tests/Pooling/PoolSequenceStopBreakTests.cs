using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probes of commit 2d645fd on the pooled sender: its batch (a streaming batch over the feeder's sequence) is
/// no longer pulled after a loss; the callers it had not taken go back to the queue and to another connection. Every
/// caller completes, and its outcome matches what the server stored.
/// </summary>
public sealed class PoolSequenceStopBreakTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_content_read_failure_inside_DATA_in_the_middle_of_a_batch_fails_only_its_caller_and_the_others_are_delivered_once()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var before = Enumerable.Range(0, 10).Select(i => PoolTestMessages.Create("content-fail-before", i)).ToArray();
        var after = Enumerable.Range(0, 10).Select(i => PoolTestMessages.Create("content-fail-after", i)).ToArray();
        var failingContent = new FailingStream(Encoding.ASCII.GetBytes("Subject: fails\r\n\r\n" + new string('x', 70) + "\r\n"));
        var failing = SmtpMessage.FromStream(new SmtpEnvelope("sender@example.test", "rcpt-fails@example.test"), failingContent);

        var beforeTasks = before.Select(m => sender.SendAsync(m.Message)).ToArray();
        var failed = sender.SendAsync(failing);
        var afterTasks = after.Select(m => sender.SendAsync(m.Message)).ToArray();
        greeting.SetResult(); // one batch takes them all, in this order

        var failedResult = await failed.WaitAsync(Limit);
        var results = await Task.WhenAll(beforeTasks.Concat(afterTasks)).WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.EndedInContent > 0); // the server sees the first connection end on its own thread

        failedResult.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        failedResult.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted || r.Outcome == SmtpSendOutcome.Unknown);
        before.Concat(after).Zip(results).Should().OnlyContain(p => p.Second.Outcome == SmtpSendOutcome.Accepted ? server.CountOf(p.First.MessageId) == 1 : server.CountOf(p.First.MessageId) <= 1);
        after.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1, "the callers behind the failed content were never written on the closed connection: a fresh one took them");
        server.EndedInContent.Should().Be(1, "the failed content's DATA was never ended");
        server.Connections.Should().Be(2);
        var statistics = sender.GetStatistics();
        statistics.Discarded.Should().Be(1);
        statistics.Retries.Should().Be(0, "the callers behind it were not taken from the queue by the lost batch: first attempts on the fresh connection");
        statistics.PendingRequests.Should().Be(0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Callers_arriving_while_the_connection_drops_mid_batch_all_complete_and_nothing_is_delivered_twice(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1, maxBatchSize: 8));
        (await sender.SendAsync(PoolTestMessages.Create("arrive-warm", 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        proxy.DropNext(DropPoint.BeforeNthMail, 5);

        // Callers come one by one: the batch's feeder waits between them (the session reads replies meanwhile).
        var messages = Enumerable.Range(0, 40).Select(i => PoolTestMessages.Create("arrive", i)).ToArray();
        var tasks = new List<Task<SmtpSendResult>>();
        foreach (var (message, _) in messages)
        {
            tasks.Add(sender.SendAsync(message));
            await Task.Delay(3);
        }

        var results = await Task.WhenAll(tasks).WaitAsync(Limit);
        await Task.Delay(300);

        results.ShouldMatchServer(messages, server);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted || r.Outcome == SmtpSendOutcome.Unknown, "a message not written when the connection broke is retried on a fresh connection");
        server.Connections.Should().Be(2);
        sender.GetStatistics().Discarded.Should().Be(1);
        sender.GetStatistics().PendingRequests.Should().Be(0);
    }
}
