using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace MailPipe.Extensions.Tests;

/// <summary>POST /mail of the sample against the real Postfix (Maildir /tmp/mailpipe-maildir/&lt;recipient&gt;/new).</summary>
public sealed class SampleMailTests
{
    [Fact]
    public async Task Post_mail_arrives_in_the_Maildir_and_answers_the_outcome()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("post");

        var response = await client.PostAsJsonAsync("/mail", new { from = "alice@example.test", to = new[] { recipient, "unknown-x@example.test" }, subject = "Grüße from the sample", body = "Hello Bob,\nthe sample sent this.\n" });

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var json = await response.Content.ReadFromJsonAsync<JsonElement>();
        json.GetProperty("outcome").GetString().Should().Be("Accepted");
        json.GetProperty("replyCode").GetInt32().Should().Be(250);
        var recipients = json.GetProperty("recipients").EnumerateArray().ToList();
        recipients.Should().HaveCount(2);
        recipients[0].GetProperty("address").GetString().Should().Be(recipient);
        recipients[0].GetProperty("replyCode").GetInt32().Should().Be(250);
        recipients[0].GetProperty("accepted").GetBoolean().Should().BeTrue();
        recipients[1].GetProperty("replyCode").GetInt32().Should().Be(550);
        recipients[1].GetProperty("accepted").GetBoolean().Should().BeFalse();

        var files = await TestServers.WaitForMaildirAsync(recipient);
        var stored = await File.ReadAllTextAsync(files.Single());
        stored.Should().Contain("Subject: =?utf-8?B?").And.Contain("From: alice@example.test").And.Contain("Hello Bob,\r\nthe sample sent this.");
    }

    [Fact]
    public async Task Every_outcome_is_200_with_the_deciding_reply()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();

        // Refused at RCPT (every recipient): the last refusal decides.
        var refused = await PostAsync(client, new { from = "alice@example.test", to = new[] { "nosuch-1@example.test" }, subject = "s", body = "b" });
        refused.GetProperty("outcome").GetString().Should().Be("Refused");
        refused.GetProperty("replyCode").GetInt32().Should().Be(550);

        // Refused after the data (Postfix test hook: eod-reject@ as the sender gets 554 after the end of data).
        var rejected = await PostAsync(client, new { from = "eod-reject@example.test", to = new[] { TestServers.UniqueRecipient("eod") }, subject = "s", body = "b" });
        rejected.GetProperty("outcome").GetString().Should().Be("Refused");
        rejected.GetProperty("replyCode").GetInt32().Should().Be(554);
        rejected.GetProperty("recipients")[0].GetProperty("accepted").GetBoolean().Should().BeTrue();

        // Not sent: nobody listens.
        await using var down = SampleApp.ForPostfix(TestServers.UnusedPort(), ("Smtp:TlsMode", "None"), ("Smtp:Tls:CaFile", ""));
        using var downClient = down.CreateClient();
        var notSent = await PostAsync(downClient, new { from = "alice@example.test", to = new[] { "bob@example.test" }, subject = "s", body = "b" });
        notSent.GetProperty("outcome").GetString().Should().Be("NotSent");
        notSent.GetProperty("replyCode").ValueKind.Should().Be(JsonValueKind.Null);
        notSent.GetProperty("recipients")[0].GetProperty("replyCode").ValueKind.Should().Be(JsonValueKind.Null);

        // Why it was not sent: without it a caller cannot tell a server that is down (retry later) from a message the
        // server's SIZE limit refuses (MessageTooLarge: never worth a retry). Null when a reply decided the outcome.
        notSent.GetProperty("error").GetString().Should().Be("ConnectionRefused");
        refused.GetProperty("error").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Theory]
    [InlineData("""{"from":"not an address","to":["bob@example.test"],"subject":"s","body":"b"}""", "from")]
    [InlineData("""{"from":"alice@example.test","to":[],"subject":"s","body":"b"}""", "to")]
    [InlineData("""{"from":"alice@example.test","to":["bob@example.test\r\nRCPT TO:<eve@example.test>"],"subject":"s","body":"b"}""", "to")]
    [InlineData("""{"from":"Alice <alice@example.test>","to":["bob@example.test"],"subject":"s","body":"b"}""", "from")]
    [InlineData("""{"from":"alice@example.test","to":["bob@example.test"],"subject":"two\r\nBcc: eve@example.test","body":"b"}""", "subject")]
    [InlineData("""{"from":"alice@example.test","to":["bob@example.test"],"subject":"s"}""", "body")]
    // Breaker10: addresses System.Net.Mail.MailAddress takes but that are not RFC 5321 mailboxes (a trailing dot, a '!'
    // in the domain): the envelope refused them with an ArgumentException that escaped the validator, a 500.
    [InlineData("""{"from":"alice@example.test.","to":["bob@example.test"],"subject":"s","body":"b"}""", "from")]
    [InlineData("""{"from":"alice@example.test","to":["bob@exa!mple.test"],"subject":"s","body":"b"}""", "to")]
    public async Task An_invalid_body_or_address_is_a_400_problem_naming_the_field(string body, string field)
    {
        await using var app = SampleApp.ForPostfix(TestServers.UnusedPort());
        using var client = app.CreateClient();
        foreach (var path in new[] { "/mail", "/mail/queue" })
        {
            var response = await client.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
            response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
            response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
            var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
            problem.GetProperty("errors").TryGetProperty(field, out _).Should().BeTrue(problem.ToString());
        }

        app.Services.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(0, "nothing is sent for a bad request");
    }

    [Fact]
    public async Task Malformed_json_is_a_400_problem()
    {
        await using var app = SampleApp.ForPostfix(TestServers.UnusedPort());
        using var client = app.CreateClient();
        var response = await client.PostAsync("/mail", new StringContent("{\"from\":", System.Text.Encoding.UTF8, "application/json"));
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json");
    }

    /// <summary>
    /// 200 concurrent POST /mail through a pool of 4 against Postfix's listener that refuses a 5th connection from
    /// the same client: all Accepted, each in the Maildir exactly once, and never more than 4 connections, counted
    /// both by the pool and by the kernel's socket table. Health checks run meanwhile and take a pool slot, not a 5th connection.
    /// </summary>
    [Fact]
    public async Task Two_hundred_concurrent_posts_through_four_connections()
    {
        TestServers.RequireListening(TestServers.PostfixLimit4Port);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixLimit4Port, ("Smtp:Pool:MaxConnections", "4"));
        using var client = app.CreateClient();
        var sender = app.Services.GetRequiredService<SmtpSender>();
        var recipients = Enumerable.Range(0, 200).Select(i => TestServers.UniqueRecipient($"c{i}")).ToArray();

        using var stop = new CancellationTokenSource();
        int maxPool = 0, maxSockets = 0;
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                var s = sender.GetStatistics();
                maxPool = Math.Max(maxPool, s.Idle + s.InUse + s.Opening);
                maxSockets = Math.Max(maxSockets, OwnConnections.Count(TestServers.PostfixLimit4Port));
                await Task.Delay(2);
            }
        });

        var posts = recipients.Select(r => client.PostAsJsonAsync("/mail", new { from = "load@example.test", to = new[] { r }, subject = "load", body = "one of 200" })).ToList();
        var health = Enumerable.Range(0, 5).Select(_ => client.GetAsync("/health")).ToList();
        var responses = await Task.WhenAll(posts);
        var healthResponses = await Task.WhenAll(health);
        await stop.CancelAsync();
        await sampler;

        foreach (var response in responses)
        {
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            var json = await response.Content.ReadFromJsonAsync<JsonElement>();
            json.GetProperty("outcome").GetString().Should().Be("Accepted", $"{json} ({sender.GetStatistics()}; at most {maxSockets} sockets of ours)");
        }

        healthResponses.Should().OnlyContain(r => r.StatusCode == HttpStatusCode.OK);
        var statistics = sender.GetStatistics();

        // Postfix counts connections per client address, and every helper on this machine is 127.0.0.1: a refused open
        // with at most 4 of our own sockets means someone else used port 2542 at the same time.
        statistics.OpenFailures.Should().Be(0, $"Postfix refuses a 5th connection from 127.0.0.1: a failed open would show here ({statistics}; at most {maxSockets} sockets of ours)");
        maxPool.Should().BeInRange(1, 4);
        maxSockets.Should().BeInRange(1, 4);

        foreach (var recipient in recipients)
        {
            await TestServers.WaitForMaildirAsync(recipient);
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        recipients.Where(r => TestServers.MaildirFiles(r).Length != 1).Should().BeEmpty("each message arrives exactly once");
    }

    private static async Task<JsonElement> PostAsync(HttpClient client, object body)
    {
        var response = await client.PostAsJsonAsync("/mail", body);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return await response.Content.ReadFromJsonAsync<JsonElement>();
    }
}
