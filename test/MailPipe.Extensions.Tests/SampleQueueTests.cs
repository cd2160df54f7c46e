using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests;

/// <summary>The shutdown test measures the stop against the host's timeout: it runs alone, not beside the load test.</summary>
[CollectionDefinition(nameof(SampleQueueTests), DisableParallelization = true)]
public sealed class SampleQueueTestsCollection;

/// <summary>POST /mail/queue and the consumer's shutdown.</summary>
[Collection(nameof(SampleQueueTests))]
public sealed class SampleQueueTests
{
    private const string Consumer = "MailPipe.Samples.WebApi.MailQueueConsumer";

    [Fact]
    public async Task A_queued_message_is_accepted_202_and_arrives()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("queue");

        var response = await client.PostAsJsonAsync("/mail/queue", new { from = "alice@example.test", to = new[] { recipient }, subject = "queued", body = "later" });

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        id.Should().NotBeNullOrEmpty();
        await TestServers.WaitForMaildirAsync(recipient);
        await WaitUntilAsync(() => app.Logs.Entries.Any(e => e.Category == Consumer && e.Message == $"Queued message {id} accepted (250)"));
    }

    /// <summary>
    /// Accepted with one recipient of two refused (550 5.1.1 at RCPT): the consumer logged "accepted (250)" at
    /// Information, as for a message every recipient got; the refusal is what an operator must see. Now a Warning that
    /// names how many were refused and each refused recipient's position in "to" and reply code (no address, no reply
    /// text, which quotes the address).
    /// </summary>
    [Fact]
    public async Task A_queued_message_accepted_for_some_recipients_only_is_logged_at_Warning_naming_the_refusals()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("partial");

        var response = await client.PostAsJsonAsync("/mail/queue", new { from = "alice@example.test", to = new[] { "nosuch-partial@example.test", recipient }, subject = "partial", body = "one refused" });

        response.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var id = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        await TestServers.WaitForMaildirAsync(recipient);
        await WaitUntilAsync(() => app.Logs.Entries.Any(e => e.Category == Consumer && e.Message.Contains(id!, StringComparison.Ordinal)));
        var entry = app.Logs.Entries.Should().ContainSingle(e => e.Category == Consumer && e.Message.Contains(id!, StringComparison.Ordinal)).Subject;
        entry.Level.Should().Be(LogLevel.Warning);
        entry.Message.Should().Be($"Queued message {id} accepted (250) for 1 of 2 recipients; 1 refused: to[0] 550 5.1.1");
    }

    /// <summary>
    /// The server holds the first message (the proxy stops relaying at its MAIL command), the queue fills up (100 × 202,
    /// then 503), and the host stops: the consumer takes nothing more, cancels the message in progress at 80 % of the
    /// host's shutdown timeout, before the host gives up (nothing of it reaches Postfix), and logs each of the 100
    /// queued ids at Warning. The consumer's deadline runs on a fake clock that the test moves to exactly that point
    /// (the host's own timeout, on the real clock, is far away): no race with the machine's load.
    /// </summary>
    [Fact]
    public async Task Shutdown_with_a_full_queue_cancels_the_message_in_progress_and_logs_every_queued_id()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = "MAIL FROM:<held@" };
        var shutdownTimeout = TimeSpan.FromMinutes(5);
        var clock = new ArmedClock(shutdownTimeout * 0.8);
        var app = new SampleApp(
            new Dictionary<string, string?>
            {
                ["Smtp:Host"] = TestServers.Host,
                ["Smtp:Port"] = proxy.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["Smtp:TlsMode"] = "None",
                ["Smtp:Tls:CaFile"] = "",
                ["Smtp:Timeouts:Reply"] = "00:02:00",
            },
            shutdownTimeout,
            consumerClock: clock);
        using var client = app.CreateClient();
        var heldRecipient = TestServers.UniqueRecipient("held");

        var first = await client.PostAsJsonAsync("/mail/queue", new { from = "held@example.test", to = new[] { heldRecipient }, subject = "held", body = "held by the proxy" });
        first.StatusCode.Should().Be(HttpStatusCode.Accepted);
        var firstId = (await first.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString();
        await WaitUntilAsync(() => proxy.Held == 1);

        var queuedIds = new List<string>();
        var queuedRecipients = new List<string>();
        HttpResponseMessage response;
        while (true)
        {
            var recipient = TestServers.UniqueRecipient("queued");
            response = await client.PostAsJsonAsync("/mail/queue", new { from = "alice@example.test", to = new[] { recipient }, subject = "waiting", body = "never sent" });
            if (response.StatusCode != HttpStatusCode.Accepted)
            {
                break;
            }

            queuedIds.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!);
            queuedRecipients.Add(recipient);
            queuedIds.Count.Should().BeLessThanOrEqualTo(100);
        }

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        response.Headers.RetryAfter.Should().NotBeNull();
        queuedIds.Should().HaveCount(100, "the queue holds 100 (MailQueue.Capacity) while the first message is in progress");

        var stopping = app.DisposeAsync().AsTask();
        await clock.Armed.WaitAsync(TimeSpan.FromSeconds(60));
        stopping.IsCompleted.Should().BeFalse("the message in progress is held: the stop waits for its deadline");
        clock.Advance(shutdownTimeout * 0.8);

        // Bounded far below the host's own timeout: what ended the stop is the consumer's deadline, not the host giving up.
        await stopping.WaitAsync(TimeSpan.FromSeconds(60));
        var warnings = app.Logs.Entries.Where(e => e.Category == Consumer && e.Level == LogLevel.Warning).Select(e => e.Message).ToList();
        // Postfix offers PIPELINING and CHUNKING: MAIL, RCPT and BDAT LAST with the whole content went out in one write
        // (held by the proxy), so for the client the end of data was written: cancelled with an unknown outcome.
        warnings.Should().Contain($"Queued message {firstId} was cancelled at shutdown after its end of data was written: it may have been delivered");
        foreach (var id in queuedIds)
        {
            warnings.Should().Contain($"Queued message {id} was not sent: the application stopped before its turn");
        }

        warnings.Should().HaveCount(101, "one warning per message not sent, nothing else");
        app.Logs.Entries.Should().NotContain(e => e.Category == Consumer && e.Level == LogLevel.Information && e.Message.Contains("accepted", StringComparison.Ordinal));

        // Nothing of the held message reached the server (the proxy held its MAIL), and no queued message was sent.
        await Task.Delay(TimeSpan.FromSeconds(1));
        TestServers.MaildirFiles(heldRecipient).Should().BeEmpty();
        queuedRecipients.Should().OnlyContain(r => TestServers.MaildirFiles(r).Length == 0);
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the condition should hold within 20 s");
            await Task.Delay(20);
        }
    }
}
