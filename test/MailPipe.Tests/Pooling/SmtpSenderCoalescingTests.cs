using Xunit.Abstractions;

namespace MailPipe.Tests.Pooling;

/// <summary>Acceptance 3 of issue #10: concurrent callers on one connection share round trips, each with its own result.</summary>
public sealed class SmtpSenderCoalescingTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Thirty_two_concurrent_callers_on_one_connection_share_round_trips_and_each_gets_its_own_result(bool chunking)
    {
        // The greeting is held until all 32 callers wait: how many batches they make does not depend on how fast the
        // test's loop is against the connection's opening (on a loaded machine the pool could take the first callers
        // alone, which is right, but not what this test is about).
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking) { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var messages = Enumerable.Range(0, 32).Select(i => PoolTestMessages.Create("coalesce", i)).ToArray();

        var tasks = messages.Select(m => sender.SendAsync(m.Message)).ToArray();
        sender.GetStatistics().PendingRequests.Should().Be(32);
        greeting.SetResult();
        var results = await Task.WhenAll(tasks);

        var statistics = sender.GetStatistics();
        output.WriteLine($"{(chunking ? "BDAT" : "DATA")}: {statistics}");
        for (var i = 0; i < messages.Length; i++)
        {
            results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted);
            results[i].Envelope.Should().BeSameAs(messages[i].Message.Envelope, "each caller gets the result of its own transaction");
            server.CountOf(messages[i].MessageId).Should().Be(1);
        }

        server.Connections.Should().Be(1);
        statistics.Opened.Should().Be(1);
        statistics.Messages.Should().Be(32);
        statistics.Batches.Should().Be(1, "callers waiting for the connection are taken together");

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
        // The greeting is held: the only connection cannot be opened, so every message waits until the test lets it.
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var messages = Enumerable.Range(0, 8).Select(i => PoolTestMessages.Create("cancel-waiting", i)).ToArray();
        using var cts = new CancellationTokenSource();

        var tasks = messages.Select((m, i) => sender.SendAsync(m.Message, i == 3 ? cts.Token : default)).ToArray();
        sender.GetStatistics().PendingRequests.Should().Be(8, "the connection is still being opened: nothing has been taken");
        await cts.CancelAsync();
        var cancelled = () => tasks[3];

        await cancelled.Should().ThrowAsync<OperationCanceledException>();
        sender.GetStatistics().PendingRequests.Should().Be(7, "the cancelled message left the queue");
        greeting.SetResult();
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
    /// <summary>Taken into the running batch but not yet written: its transaction is skipped (WithCancellation), the others go on.</summary>
    [Fact]
    public async Task A_caller_cancelled_after_its_message_joined_a_batch_but_before_its_first_byte_is_skipped_alone()
    {
        // The greeting is held until all 24 wait (so the connection takes them as one batch), and the first 354 until
        // the cancellation is done (so the batch is still at its first transaction: with DATA nothing of the next
        // one can be written before the first's content).
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var data = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task, DataGate = data.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 32));
        var messages = Enumerable.Range(0, 24).Select(i => PoolTestMessages.Create("cancel-taken", i)).ToArray();
        using var cts = new CancellationTokenSource();

        var tasks = messages.Select((m, i) => sender.SendAsync(m.Message, i == 20 ? cts.Token : default)).ToArray();
        greeting.SetResult();
        await server.DataReceived.WaitAsync(TimeSpan.FromSeconds(30));

        sender.GetStatistics().PendingRequests.Should().Be(0, "every message is in the batch");
        server.Received.Should().BeEmpty("the batch is still at its first transaction (its 354 is held)");
        await cts.CancelAsync();
        data.SetResult();

        await tasks[20].Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        for (var i = 0; i < tasks.Length; i++)
        {
            if (i != 20)
            {
                (await tasks[i]).Outcome.Should().Be(SmtpSendOutcome.Accepted);
            }
        }

        server.CountOf(messages[20].MessageId).Should().Be(0);
        server.Received.Should().HaveCount(23);
        server.Connections.Should().Be(1, "the connection was kept");
    }

    /// <summary>Cancelled after its end of data was written, and the reply never came: Unknown, thrown as SmtpOutcomeUnknownException.</summary>
    [Fact]
    public async Task A_caller_cancelled_after_its_end_of_data_learns_the_outcome_is_unknown()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        var (message, id) = PoolTestMessages.Create("cancel-after-dot", 0);
        using var cts = new CancellationTokenSource();
        proxy.DropNext(DropPoint.AfterFinalDot);

        // The proxy keeps the connection (no reply) until the caller has cancelled: closed 200 ms after the drop, the
        // loss could come first on a loaded machine, and the caller would get an Unknown result, not a cancellation.
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        proxy.HoldDroppedConnection = cancelled.Task;
        var send = sender.SendAsync(message, cts.Token);
        await server.WaitUntilAsync(s => s.CountOf(id) == 1);
        await cts.CancelAsync();

        var thrown = await send.Awaiting(t => t).Should().ThrowAsync<SmtpOutcomeUnknownException>();
        cancelled.SetResult();
        thrown.Which.Result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        server.CountOf(id).Should().Be(1, "it was delivered once, and never sent again");
        sender.GetStatistics().Retries.Should().Be(0);
    }
    /// <summary>Without PIPELINING (switched off here) a batch is one transaction at a time: still every caller gets its own result.</summary>
    [Fact]
    public async Task Without_pipelining_concurrent_callers_are_served_one_transaction_at_a_time()
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 2);
        options.Session = new SmtpSessionOptions { UsePipelining = false };
        await using var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 20).Select(i => PoolTestMessages.Create("no-pipelining", i)).ToArray();

        var results = await Task.WhenAll(messages.Select(m => sender.SendAsync(m.Message))).WaitAsync(TimeSpan.FromSeconds(30));

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        messages.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
    }
    /// <summary>
    /// A new connection only when every open one already has a full batch waiting: 40 callers waiting with batches of
    /// 16 need 3 (16 + 16 + 8), never 8. The greeting is held until all 40 wait, so that no connection is ready and
    /// takes callers while the test is still queuing them (on a loaded machine that made 2 or 3).
    /// </summary>
    [Fact]
    public async Task A_new_connection_is_opened_only_when_every_open_one_has_a_full_batch_waiting()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 8, maxBatchSize: 16));

        var sends = Enumerable.Range(0, 40).Select(i => sender.SendAsync(PoolTestMessages.Create("open-rule", i).Message)).ToArray();
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.PendingRequests == 40 && s.Opening == 3, "40 waiting messages fill two batches of 16 and start a third");
        greeting.SetResult();
        var results = await Task.WhenAll(sends);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        server.Connections.Should().Be(3);
    }

    /// <summary>
    /// A batch keeps every result until it ends, and 32 callers that send again as soon as they are answered keep a
    /// connection's batch going for ever (16 in flight, 16 waiting): the batch ends after its cap and the next starts,
    /// so a busy connection's memory stays bounded. Before the cap the 320 messages went out in one or two batches.
    /// </summary>
    [Fact]
    public async Task Under_steady_load_a_connection_ends_its_batch_after_the_cap_and_starts_the_next()
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16);
        options.MaxMessagesPerConnection = 0;
        options.MaxMessagesPerBatch = 40;
        await using var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 320).Select(i => PoolTestMessages.Create("batch-cap", i)).ToArray();
        var next = -1;

        var callers = Enumerable.Range(0, 32).Select(_ => Task.Run(async () =>
        {
            List<SmtpSendResult> results = [];
            for (int i; (i = Interlocked.Increment(ref next)) < messages.Length;)
            {
                results.Add(await sender.SendAsync(messages[i].Message));
            }

            return results;
        }));
        var results = (await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(60))).SelectMany(r => r).ToList();

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        results.Should().HaveCount(320).And.OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        messages.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
        statistics.Opened.Should().Be(1);
        statistics.Batches.Should().BeGreaterThanOrEqualTo(320 / 40, "no batch takes more than 40 messages");
    }
}
