namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): tiny IdleTimeout, MaxLifetime, NoopAfterIdle and AcquireTimeout settings under bursts of
/// callers with pauses between them: every result is the server's truth, and the counters add up once the pool settles
/// (every connection opened is idle or was discarded).
/// </summary>
public sealed class Breaker16ChurnTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true, 100, 1, 1)]
    [InlineData(false, 100, 50, 1)]
    [InlineData(true, 150, 10_000, 30)]
    [InlineData(false, 120, 80, 5)]
    public async Task Bursts_through_connections_that_expire_all_the_time_tell_the_truth_and_the_counts_add_up(bool chunking, int idleMs, int lifetimeMs, int noopMs)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 3, maxBatchSize: 4);
        options.IdleTimeout = TimeSpan.FromMilliseconds(idleMs);
        options.MaxLifetime = TimeSpan.FromMilliseconds(lifetimeMs);
        options.NoopAfterIdle = TimeSpan.FromMilliseconds(noopMs);
        options.MaxMessagesPerConnection = 7;
        await using var sender = new SmtpSender(options);
        var random = new Random(idleMs + lifetimeMs);
        var messages = new List<(SmtpMessage Message, string MessageId)>();
        var results = new List<SmtpSendResult>();

        for (var burst = 0; burst < 10; burst++)
        {
            var batch = Enumerable.Range(0, random.Next(1, 40)).Select(i => PoolTestMessages.Create("churn", burst * 100 + i)).ToList();
            var sends = batch.Select(m => Task.Run(() => sender.SendAsync(m.Message))).ToArray();
            var all = Task.WhenAll(sends);
            (await Task.WhenAny(all, Task.Delay(Limit)) == all).Should().BeTrue("no caller may hang");
            messages.AddRange(batch);
            results.AddRange(await all);
            await Task.Delay(random.Next(0, idleMs * 2)); // a pause: some connections expire, some are checked with NOOP
        }

        results.Should().OnlyContain(r => r.IsAccepted, string.Join(" | ", results.Where(r => !r.IsAccepted).Select(r => r.ToString())));
        results.ShouldMatchServer(messages, server);
        results.Should().OnlyContain(r => r.Attempts == 1);

        var deadline = DateTime.UtcNow + Limit;
        SmtpSenderStatistics statistics;
        while ((statistics = sender.GetStatistics()) is { InUse: > 0 } or { Opening: > 0 } || statistics.Opened != statistics.Discarded + statistics.Idle)
        {
            if (DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(10);
        }

        statistics.Opened.Should().Be(statistics.Discarded + statistics.Idle, statistics.ToString());
        statistics.Messages.Should().Be(messages.Count, statistics.ToString());
        statistics.OpenFailures.Should().Be(0);
        statistics.Retries.Should().Be(0);
        statistics.Idle.Should().BeLessThanOrEqualTo(3);
        server.Connections.Should().Be((int)statistics.Opened, "every connection the server saw was opened by the pool");
    }
}
