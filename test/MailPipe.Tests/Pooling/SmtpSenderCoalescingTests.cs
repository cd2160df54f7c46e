namespace MailPipe.Tests.Pooling;

/// <summary>Acceptance 3 of issue #10: concurrent callers on one connection share round trips, each with its own result.</summary>
public sealed class SmtpSenderCoalescingTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Thirty_two_concurrent_callers_on_one_connection_share_round_trips_and_each_gets_its_own_result(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var messages = Enumerable.Range(0, 32).Select(i => PoolTestMessages.Create("coalesce", i)).ToArray();

        var tasks = messages.Select(m => sender.SendAsync(m.Message)).ToArray();
        var results = await Task.WhenAll(tasks);

        var statistics = sender.GetStatistics();
        for (var i = 0; i < messages.Length; i++)
        {
            results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted);
            results[i].Envelope.Should().BeSameAs(messages[i].Message.Envelope, "each caller gets the result of its own transaction");
            server.CountOf(messages[i].MessageId).Should().Be(1);
        }

        server.Connections.Should().Be(1);
        statistics.Opened.Should().Be(1);
        statistics.Messages.Should().Be(32);
        statistics.Batches.Should().BeLessThan(4, "callers waiting for the connection are taken together");

        // With BDAT a whole window is written before the first reply is read; with DATA each message still waits for its 354.
        statistics.RoundTrips.Should().BeLessThan(chunking ? 8 : 40);
        if (chunking)
        {
            statistics.RoundTrips.Should().BeLessThan(32 / 4, "32 transactions share a handful of round trips");
        }
    }

    [Fact]
    public async Task A_caller_cancelled_while_waiting_is_dropped_without_touching_the_others()
    {
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var messages = Enumerable.Range(0, 8).Select(i => PoolTestMessages.Create("cancel-waiting", i)).ToArray();
        using var cts = new CancellationTokenSource();

        var tasks = messages.Select((m, i) => sender.SendAsync(m.Message, i == 3 ? cts.Token : default)).ToArray();
        await cts.CancelAsync(); // the connection is still being opened: message 3 has not been taken
        var cancelled = () => tasks[3];

        await cancelled.Should().ThrowAsync<OperationCanceledException>();
        for (var i = 0; i < tasks.Length; i++)
        {
            if (i != 3)
            {
                (await tasks[i]).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            }
        }

        server.CountOf(messages[3].MessageId).Should().Be(0);
        server.Received.Should().HaveCount(7);
    }
}
