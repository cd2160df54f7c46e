namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probes (session 16): a tiny AcquireTimeout with 64 callers on one connection, and SendBatchAsync racing
/// Dispose and DisposeAsync: every result the caller gets is the server's truth and the pool settles.
/// </summary>
public sealed class Breaker16AcquireDisposeTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true, 1)]
    [InlineData(false, 1)]
    [InlineData(true, 20)]
    [InlineData(false, 20)]
    public async Task Sixty_four_callers_on_one_connection_with_a_tiny_AcquireTimeout_get_the_truth(bool chunking, int acquireMs)
    {
        await using var server = new LoopbackSmtpServer(chunking) { DataDelay = TimeSpan.FromMilliseconds(5) };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 4);
        options.AcquireTimeout = TimeSpan.FromMilliseconds(acquireMs);
        await using var sender = new SmtpSender(options);

        // The connection open first: a caller's acquire timeout of 1 or 20 ms can end before a connection opens on a
        // loaded machine (every message NotSent, then, and no batch raced at all). Once it is idle, the first caller's
        // message is handed to it as it joins the queue, and the others race the timeout against its batches.
        var warmed = false;
        for (var attempt = 0; attempt < 500 && !warmed; attempt++)
        {
            warmed = (await sender.SendAsync(PoolTestMessages.Create("acquire-warm", attempt).Message)).IsAccepted;
            if (!warmed)
            {
                await Task.Delay(10);
            }
        }

        warmed.Should().BeTrue("the pool opens its connection in the end");
        var messages = Enumerable.Range(0, 64).Select(i => PoolTestMessages.Create("acquire", i)).ToList();

        var sends = messages.Select(m => Task.Run(() => sender.SendAsync(m.Message))).ToArray();
        var all = Task.WhenAll(sends);
        (await Task.WhenAny(all, Task.Delay(Limit)) == all).Should().BeTrue("no caller may hang");
        var results = await all;

        results.ShouldMatchServer(messages, server);
        results.Where(r => !r.IsAccepted).Where(
            r => !(r.Outcome == SmtpSendOutcome.NotSent && r.IsTransientFailure && ((SmtpException)r.Exception!).ErrorCode == SmtpErrorCode.TimedOut)).Should().BeEmpty(
            "the only failure is the acquire timeout");
        results.Should().Contain(r => r.IsAccepted);
        var statistics = sender.GetStatistics();
        statistics.PendingRequests.Should().Be(0);
        statistics.Messages.Should().Be(results.Count(r => r.IsAccepted) + 1, "a message that timed out waiting was never handed to a connection (the warm-up's accepted one is counted)");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task SendBatchAsync_racing_Dispose_and_DisposeAsync_returns_the_truth_for_every_message(bool chunking, bool syncFirst)
    {
        for (var round = 0; round < 20; round++)
        {
            await using var server = new LoopbackSmtpServer(chunking);
            var options = PoolTestMessages.Options(server.Port, maxConnections: 2, maxBatchSize: 4);
            options.DisposeTimeout = TimeSpan.FromMilliseconds(1 + (round % 5 * 10));
            var sender = new SmtpSender(options);
            var messages = Enumerable.Range(0, 24).Select(i => PoolTestMessages.Create("batch-dispose", i, bodyBytes: i % 3 == 0 ? 100_000 : 512)).ToList();

            var batch = sender.SendBatchAsync(messages.Select(m => m.Message));
            await Task.Delay(round % 7);
            if (syncFirst)
            {
                sender.Dispose();
            }

            var disposals = Task.WhenAll(sender.DisposeAsync().AsTask(), Task.Run(sender.Dispose), Task.Run(() => sender.DisposeAsync().AsTask()));
            (await Task.WhenAny(disposals, Task.Delay(Limit)) == disposals).Should().BeTrue("the disposal completes");
            (await Task.WhenAny(batch, Task.Delay(Limit)) == batch).Should().BeTrue("the batch completes");

            var results = await batch; // disposal is no cancellation: the results are returned

            // An end of data written just before the disposal closed its connection may still be on its way to the
            // server: compare with what the server stored once it has read everything (every session ended).
            await server.WaitUntilAsync(s => s.ActiveSessions == 0);
            server.ActiveSessions.Should().Be(0, "round {0}: the sender closed every connection", round);
            results.Should().HaveCount(messages.Count);
            results.ShouldMatchServer(messages, server);
            results.Where(r => r.Outcome == SmtpSendOutcome.NotSent && r.Exception is not ObjectDisposedException).Should().BeEmpty("round {0}", round);
            var statistics = sender.GetStatistics();
            statistics.Should().Match<SmtpSenderStatistics>(s => s.Idle == 0 && s.InUse == 0 && s.Opening == 0 && s.PendingRequests == 0, "round {0}: every connection is closed once DisposeAsync completed ({1})", round, statistics);
            statistics.Opened.Should().Be(statistics.Discarded, "round {0}: {1}", round, statistics);
            server.Received.Count.Should().Be(results.Count(r => r.IsAccepted) + results.Count(r => r.Outcome == SmtpSendOutcome.Unknown && server.CountOf(messages[results.ToList().IndexOf(r)].MessageId) == 1));
        }
    }
}
