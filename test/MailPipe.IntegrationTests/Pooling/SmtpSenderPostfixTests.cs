using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MailPipe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Acceptance 1 of issue #10: the shared sender against the real Postfix listener that refuses a 9th concurrent
/// connection from one client (smtpd_client_connection_count_limit = 8, no exception for loopback).
/// </summary>
public sealed class SmtpSenderPostfixTests(ITestOutputHelper output)
{
    private static int Limit8Port =>
        int.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_LIMIT8_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : 2541;

    private static string MailLog => Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_LOG") ?? "/tmp/mailpipe-postfix/maillog";

    /// <summary>
    /// With the default batch size the 32 callers share a couple of connections; with batches of 2 the pool wants 16
    /// connections and must stop at 8, the server's limit.
    /// </summary>
    [Theory]
    [InlineData(16)]
    [InlineData(2)]
    public async Task A_thousand_messages_from_32_callers_through_8_connections_arrive_exactly_once(int maxBatchSize)
    {
        const int Messages = 1000;
        const int Callers = 32;
        var recipient = TestServers.UniqueRecipient("pool");
        var logStart = new FileInfo(MailLog).Length;
        TestServers.RequireListening(Limit8Port); // one connection of its own, in the log too
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = Limit8Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-test.example.test",
            MaxConnections = 8,
            MaxBatchSize = maxBatchSize,
        });

        var ids = new ConcurrentBag<string>();
        var outcomes = new ConcurrentDictionary<SmtpSendOutcome, int>();
        var next = -1;
        var peakInUse = 0;
        var started = DateTime.UtcNow;
        await Task.WhenAll(Enumerable.Range(0, Callers).Select(caller => Task.Run(async () =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Messages)
            {
                var id = $"<pool-{i}-{Guid.NewGuid():N}@example.test>";
                var content = Encoding.ASCII.GetBytes($"From: sender@example.test\r\nTo: {recipient}\r\nSubject: pool {i} from caller {caller}\r\nMessage-Id: {id}\r\n\r\nMessage {i}.\r\n");
                var result = await sender.SendAsync(new SmtpEnvelope("sender@example.test", recipient), content);
                outcomes.AddOrUpdate(result.Outcome, 1, (_, n) => n + 1);
                result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
                ids.Add(id);
                var statistics = sender.GetStatistics();
                InterlockedMax(ref peakInUse, statistics.InUse + statistics.Opening + statistics.Idle);
            }
        })));
        var elapsed = DateTime.UtcNow - started;

        var stored = await Maildir.WaitForPostfixAsync(recipient, Messages, TimeSpan.FromSeconds(180));
        var storedIds = stored.Select(bytes => Regex.Match(Encoding.ASCII.GetString(bytes), @"^Message-Id: (<[^>]+>)", RegexOptions.Multiline).Groups[1].Value).ToList();
        var statistics = sender.GetStatistics();

        // Postfix writes its log through postlogd, behind the deliveries: a stored message's log lines may come later.
        // Its delivery lines are logged after the connections' (the connect came first), so once every one is there, so are they.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (ReadLogFrom(logStart).Count(l => l.Contains($"to=<{recipient}>", StringComparison.Ordinal) && l.Contains("status=sent", StringComparison.Ordinal)) < Messages && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        var log = ReadLogFrom(logStart);
        var connects = log.Count(l => l.Contains("postfix/limit8/smtpd", StringComparison.Ordinal) && l.Contains(" connect from ", StringComparison.Ordinal));
        var refusals = log.Count(l => l.Contains("postfix/limit8/smtpd", StringComparison.Ordinal) && l.Contains("too many connections", StringComparison.OrdinalIgnoreCase));
        var concurrencyWarnings = log.Count(l => l.Contains("concurrency limit exceeded", StringComparison.OrdinalIgnoreCase) && l.Contains("2541", StringComparison.Ordinal));

        output.WriteLine($"MaxBatchSize {maxBatchSize}: {Messages} messages from {Callers} callers in {elapsed.TotalSeconds:0.0} s: {string.Join(", ", outcomes.Select(o => $"{o.Key} {o.Value}"))}");
        output.WriteLine($"sender: {statistics}; most connections at once seen by a caller: {peakInUse}");
        output.WriteLine($"Postfix log (limit8 service, since the test began): {connects} connections, {refusals} 'too many connections' refusals, {concurrencyWarnings} concurrency warnings");

        storedIds.Should().HaveCount(Messages);
        storedIds.Should().OnlyHaveUniqueItems();
        storedIds.Should().BeEquivalentTo(ids);
        statistics.OpenFailures.Should().Be(0, "a 9th concurrent connection would have been refused");
        refusals.Should().Be(0);
        concurrencyWarnings.Should().Be(0);
        connects.Should().Be((int)statistics.Opened + 1, "the server saw the connections the pool opened and the probe's");
        peakInUse.Should().BeLessThanOrEqualTo(8);
    }

    /// <summary>
    /// Postfix 2540 (smtpd_timeout = 2s) sends a real "421 4.4.2 ... timeout exceeded" to an idle client and closes:
    /// the pool finds the stale connections before lending them, so the next messages cost no failed attempt.
    /// </summary>
    [Fact]
    public async Task Connections_closed_by_Postfix_idle_timeout_are_replaced_without_a_failed_attempt()
    {
        var port = int.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_IDLE_PORT"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : 2540;
        TestServers.RequireListening(port);
        var recipient = TestServers.UniqueRecipient("pool-idle");
        await using var relay = new LoopbackRelay(port);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = relay.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-test.example.test",
            MaxConnections = 2,
            NoopAfterIdle = Timeout.InfiniteTimeSpan, // only the check without a round trip
        });
        var envelope = new SmtpEnvelope("sender@example.test", recipient);
        byte[] Message(int i) => Encoding.ASCII.GetBytes($"Subject: idle {i}\r\nMessage-Id: <idle-{i}-{Guid.NewGuid():N}@example.test>\r\n\r\nHello.\r\n");

        (await Task.WhenAll(Enumerable.Range(0, 20).Select(i => sender.SendAsync(envelope, Message(i))))).Should().OnlyContain(r => r.IsAccepted);
        // Postfix says 421 and closes after 2 s idle: the relay tells when it has closed every connection and the
        // client's sockets hold the 421 and the end of the stream (a 3.5 s sleep lent a live connection when Postfix ran late).
        await relay.WaitUntilServerClosedAllAsync(TimeSpan.FromSeconds(60));

        var after = await Task.WhenAll(Enumerable.Range(20, 20).Select(i => sender.SendAsync(envelope, Message(i))));

        after.Should().OnlyContain(r => r.IsAccepted, "stale connections are replaced before a message is given to them");
        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        statistics.Retries.Should().Be(0);
        statistics.Discarded.Should().BeGreaterThan(0);
        (await Maildir.WaitForPostfixAsync(recipient, 40)).Should().HaveCount(40);
    }

    private static List<string> ReadLogFrom(long offset)
    {
        using var stream = new FileStream(MailLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(offset, SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
