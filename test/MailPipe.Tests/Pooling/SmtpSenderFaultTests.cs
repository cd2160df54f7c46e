using Xunit.Abstractions;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Acceptance 2 of issue #10: a loopback fault proxy between the sender and a server. Every caller's outcome is checked
/// against what the server stored: Accepted means exactly one copy, Unknown at most one, NotSent or Refused none.
/// </summary>
public sealed class SmtpSenderFaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    private LoopbackSmtpServer _server = null!;
    private FaultProxy _proxy = null!;

    public Task InitializeAsync()
    {
        _server = new LoopbackSmtpServer(chunking: true);
        _proxy = new FaultProxy(_server.Port);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Theory]
    [InlineData("421 4.4.2 loopback Error: timeout exceeded")]
    [InlineData(null)]
    public async Task Idle_connections_closed_by_the_server_are_replaced_before_lending_without_a_failed_attempt(string? reply)
    {
        await using var sender = new SmtpSender(PoolTestMessages.Options(_proxy.Port, maxConnections: 4, maxBatchSize: 2));
        await SendAndCheckAsync(sender, "warm", 8);

        // A caller has its result before its batch's worker puts the connection back: wait for every connection to be
        // back (a loaded run found none idle yet, after the 300 ms SendAndCheckAsync happens to wait).
        await WaitAsync(() => sender.GetStatistics() is { InUse: 0, Opening: 0 });
        sender.GetStatistics().Idle.Should().BeGreaterThan(0);

        await _proxy.CloseAllAsync(reply);
        await WaitAsync(() => _proxy.Open == 0);

        var results = await SendAndCheckAsync(sender, "after-close", 16);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var statistics = sender.GetStatistics();
        statistics.Retries.Should().Be(0, "stale connections are found before a message is given to them");
        statistics.Discarded.Should().BeGreaterThan(0);
        Report(statistics);
    }

    [Fact]
    public async Task A_restart_while_connections_are_idle_costs_no_caller_a_failed_attempt()
    {
        await using var sender = new SmtpSender(PoolTestMessages.Options(_proxy.Port, maxConnections: 4, maxBatchSize: 4));
        await SendAndCheckAsync(sender, "before-restart", 16);
        var opened = sender.GetStatistics().Opened;

        await _proxy.GoDownAsync();   // every connection closed, no 421
        _proxy.Accept();              // and back before the next message

        var results = await SendAndCheckAsync(sender, "after-restart", 32);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        var statistics = sender.GetStatistics();
        statistics.Retries.Should().Be(0);
        statistics.Opened.Should().BeGreaterThan(opened);
        Report(statistics);
    }

    [Fact]
    public async Task New_connections_refused_for_a_while_are_NotSent_transient_and_the_pool_recovers()
    {
        await using var sender = new SmtpSender(PoolTestMessages.Options(_proxy.Port, maxConnections: 2, maxBatchSize: 4));
        await SendAndCheckAsync(sender, "up", 4);
        await _proxy.GoDownAsync("421 4.3.2 Service shutting down");

        var down = await SendAndCheckAsync(sender, "down", 8);
        foreach (var r in down)
        {
            output.WriteLine(r.ToString());
        }

        Report(sender.GetStatistics());

        down.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent && r.IsTransientFailure);
        down.Select(r => ((SmtpException)r.Exception!).ErrorCode).Should().OnlyContain(c => c == SmtpErrorCode.ConnectionRefused);

        _proxy.Accept();
        var up = await SendAndCheckAsync(sender, "back", 8);
        up.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        Report(sender.GetStatistics());
    }

    /// <summary>
    /// 32 callers in one batch on one connection, broken just before the n-th MAIL reaches the server. With DATA only the
    /// message whose dot was written (none: each waits for 354) can be Unknown; with BDAT the session writes a window of
    /// 16 transactions ahead, so the ones written are Unknown (truthfully: the client cannot know) and the rest are NotSent
    /// and sent again on a fresh connection.
    /// </summary>
    [Theory]
    [InlineData(true, 1)]
    [InlineData(true, 4)]
    [InlineData(false, 1)]
    [InlineData(false, 4)]
    public async Task A_connection_dropped_mid_batch_loses_nothing_delivers_nothing_twice_and_tells_the_truth(bool chunking, int dropAtMail)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1, maxBatchSize: 32));
        await SendAndCheckAsync(sender, "warm", 1, server);
        proxy.DropNext(DropPoint.BeforeNthMail, dropAtMail);

        var results = await SendAndCheckAsync(sender, "mid-batch", 32, server);

        Report(sender.GetStatistics(), results);
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted || r.Outcome == SmtpSendOutcome.Unknown, "NotSent messages are retried on a fresh connection");
        var unknown = results.Count(r => r.Outcome == SmtpSendOutcome.Unknown);
        unknown.Should().BeLessThanOrEqualTo(chunking ? 16 : 1, "only transactions whose end of data was written can be Unknown (with DATA at most the one whose dot shares the flush with the next MAIL)");
        results.Count(r => r.Outcome == SmtpSendOutcome.Accepted).Should().Be(32 - unknown, "every message not written when the connection broke went to a fresh connection");
        server.Connections.Should().Be(2);
    }

    /// <summary>
    /// The server says 421 in the middle of a batch (in place of its reply to a MAIL) and closes: the connection is
    /// discarded (never lent again), the message refused with 421 and those not yet answered go to a fresh connection,
    /// and nothing is lost or doubled.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_421_in_the_middle_of_a_batch_discards_the_connection_and_loses_nothing(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1, maxBatchSize: 32));
        await SendAndCheckAsync(sender, "warm-421", 1, server);
        proxy.DropNext(DropPoint.BeforeNthMail, 3, "421 4.3.2 Service shutting down");

        var results = await SendAndCheckAsync(sender, "mid-batch-421", 24, server);

        Report(sender.GetStatistics(), results);
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted || r.Outcome == SmtpSendOutcome.Unknown);
        server.Connections.Should().Be(2, "the 421-ed connection was replaced once");
        sender.GetStatistics().Discarded.Should().Be(1);
        sender.GetStatistics().Retries.Should().BeGreaterThan(0);
    }

    /// <summary>Disposal lets the batch in flight finish (within DisposeTimeout): its callers get their real results.</summary>
    [Fact]
    public async Task DisposeAsync_lets_the_batch_in_flight_finish()
    {
        await using var server = new LoopbackSmtpServer(chunking: false) { DataDelay = TimeSpan.FromMilliseconds(20) };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 16);
        options.DisposeTimeout = TimeSpan.FromSeconds(60); // a backstop: the batch (10 x 20 ms) must not race the default 5 s on a loaded machine
        var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 10).Select(i => PoolTestMessages.Create("dispose-inflight", i)).ToArray();
        var tasks = messages.Select(m => sender.SendAsync(m.Message)).ToArray();
        await WaitAsync(() => sender.GetStatistics().PendingRequests == 0); // all taken by the batch: none is still waiting at disposal

        await sender.DisposeAsync();

        (await Task.WhenAll(tasks)).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        messages.Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
        server.Quits.Should().Be(1);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_connection_dropped_after_the_end_of_data_is_Unknown_and_never_sent_again(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 1));
        proxy.DropNext(DropPoint.AfterFinalDot);

        var results = await SendAndCheckAsync(sender, "after-dot", 1, server);

        results[0].Outcome.Should().Be(SmtpSendOutcome.Unknown);
        results[0].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        sender.GetStatistics().Retries.Should().Be(0);

        var next = await SendAndCheckAsync(sender, "after-dot-next", 4, server);
        next.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, "the pool recovers");
    }

    /// <summary>
    /// Many callers, some cancelling at random moments, while connections are dropped mid-batch and after a final dot:
    /// every caller's fate matches the server's store (cancelled before its first byte: not stored; Unknown: at most
    /// once; Accepted: exactly once), nothing is stored twice, and the pool keeps serving.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Random_cancellations_and_drops_never_lose_track_of_a_message(bool chunking)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        await using var proxy = new FaultProxy(server.Port);
        await using var sender = new SmtpSender(PoolTestMessages.Options(proxy.Port, maxConnections: 3, maxBatchSize: 8));
        var random = new Random(1234);
        var messages = Enumerable.Range(0, 300).Select(i => PoolTestMessages.Create("chaos", i)).ToArray();
        var outcomes = new string[messages.Length];
        var next = -1;

        var callers = Enumerable.Range(0, 24).Select(_ => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < messages.Length)
            {
                using var cts = new CancellationTokenSource();
                int delay;
                lock (random)
                {
                    delay = random.Next(0, 10) < 2 ? random.Next(0, 3) : -1;
                    if (random.Next(0, 40) == 0)
                    {
                        proxy.DropNext(random.Next(0, 2) == 0 ? DropPoint.BeforeNthMail : DropPoint.AfterFinalDot, random.Next(1, 4));
                    }
                }

                if (delay >= 0)
                {
                    cts.CancelAfter(delay);
                }

                try
                {
                    outcomes[i] = (await sender.SendAsync(messages[i].Message, cts.Token)).Outcome.ToString();
                }
                catch (SmtpOutcomeUnknownException)
                {
                    outcomes[i] = "CancelledUnknown";
                }
                catch (OperationCanceledException)
                {
                    outcomes[i] = "Cancelled";
                }
            }
        }));
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(120));
        await Task.Delay(500);

        for (var i = 0; i < messages.Length; i++)
        {
            var copies = server.CountOf(messages[i].MessageId);
            switch (outcomes[i])
            {
                case "Accepted":
                    copies.Should().Be(1, $"message {i} was Accepted");
                    break;
                case "Unknown" or "CancelledUnknown":
                    copies.Should().BeLessThanOrEqualTo(1);
                    break;
                case "Cancelled" or "NotSent" or "Refused":
                    copies.Should().Be(0, $"message {i} was {outcomes[i]}");
                    break;
                default:
                    throw new InvalidOperationException($"message {i}: no outcome");
            }
        }

        server.Received.GroupBy(m => m.MessageId).Should().OnlyContain(g => g.Count() == 1);
        outcomes.Count(o => o == "Accepted").Should().BeGreaterThan(messages.Length / 2);
        output.WriteLine(string.Join(", ", outcomes.GroupBy(o => o).Select(g => $"{g.Key}: {g.Count()}")) + "; " + sender.GetStatistics());
        (await sender.SendAsync(PoolTestMessages.Create("chaos-after", 0).Message)).Outcome.Should().Be(SmtpSendOutcome.Accepted, "the pool recovers");
    }

    private static async Task WaitAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        condition().Should().BeTrue();
    }

    /// <summary>Sends <paramref name="count"/> messages from as many concurrent callers and checks each outcome against the server's store.</summary>
    private async Task<SmtpSendResult[]> SendAndCheckAsync(SmtpSender sender, string tag, int count, LoopbackSmtpServer? server = null)
    {
        server ??= _server;
        var messages = Enumerable.Range(0, count).Select(i => PoolTestMessages.Create(tag, i)).ToArray();
        var results = await Task.WhenAll(messages.Select(m => sender.SendAsync(m.Message)));

        // A caller has its result before its batch's worker puts the connection back (or closes it): wait until none is
        // in use, so that the test's next step (a fault, more callers) never meets a batch still running from these.
        await WaitAsync(() => sender.GetStatistics().InUse == 0);

        // The server may still be storing what reached it just before a drop.
        await Task.Delay(300);
        results.ShouldMatchServer(messages, server);
        for (var i = 0; i < count; i++)
        {
            results[i].Envelope.Should().BeSameAs(messages[i].Message.Envelope);
        }

        server.Received.GroupBy(m => m.MessageId).Should().OnlyContain(g => g.Count() == 1, "no message is delivered twice");
        return results;
    }

    private void Report(SmtpSenderStatistics statistics, SmtpSendResult[]? results = null)
    {
        output.WriteLine(statistics.ToString());
        if (results is not null)
        {
            output.WriteLine(string.Join(", ", results.GroupBy(r => r.Outcome).Select(g => $"{g.Key}: {g.Count()}")));
        }
    }
}
