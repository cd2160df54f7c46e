namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe of the shared sender's coalescing: a caller whose content stream is slow must not hold back the
/// messages batched before it on the same connection (with BDAT their commands and chunks stayed buffered, unsent,
/// until the slow source produced its next piece).
/// </summary>
public sealed class SmtpSenderSlowContentBreakTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task With_BDAT_a_caller_whose_content_stream_waits_does_not_hold_back_the_messages_batched_before_it()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: true) { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var before = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("slow-before", i)).ToArray();
        var (slow, slowId, content) = GatedContentStream.Create("slow-content");

        var beforeTasks = before.Select(m => sender.SendAsync(m.Message)).ToArray();
        var slowTask = sender.SendAsync(slow);
        greeting.SetResult(); // one batch: the three, then the slow one
        await content.HeadRead.WaitAsync(Limit);

        // The slow source has not produced its rest: the three before it are on the wire all the same (they were
        // buffered unsent until the slow source produced its next piece). Their callers learn their results once the
        // slow one's content goes on: replies are read only between the writes of a batch (left as it is).
        await server.WaitUntilAsync(s => before.All(m => s.CountOf(m.MessageId) == 1));
        before.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
        slowTask.IsCompleted.Should().BeFalse();

        content.Open();
        (await Task.WhenAll(beforeTasks).WaitAsync(Limit)).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        (await slowTask.WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(slowId).Should().Be(1);
        server.Connections.Should().Be(1);
    }
}
