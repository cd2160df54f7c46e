using System.Text;
using MailPipe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Breaker 18: the shared sender against Exim's limits on one connection. Exim counts every RSET that follows a refused
/// transaction (all but the first of the session) and every NOOP as a "nonmail" command and, past
/// smtp_accept_max_nonmail (10), answers "554 Too many nonmail commands" and closes the connection.
/// </summary>
public sealed class Breaker18EximLimitTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(3, 160)]
    [InlineData(1, 80)]
    public async Task Many_refused_transactions_on_long_connections_never_cost_a_caller_a_NotSent(int maxConnections, int count)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = maxConnections,
        });
        var run = Guid.NewGuid().ToString("N")[..10];
        var recipients = Enumerable.Range(0, count).Select(i => i % 2 == 0 ? $"unknown-{run}-{i}@example.test" : $"nm-{run}-{i}@example.test").ToArray();

        var results = await Task.WhenAll(recipients.Select((recipient, i) => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", recipient),
            Encoding.ASCII.GetBytes($"Subject: nonmail {run} {i}\r\n\r\nbody {i}\r\n")))));

        foreach (var (result, i) in results.Select((r, i) => (r, i)).Where(p => p.r.Attempts > 1))
        {
            output.WriteLine($"{i}: {result.Outcome} attempts {result.Attempts}");
        }

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        // Before: Exim's "554 Too many nonmail commands" dropped a message's retry too (NotSent after 2 attempts).
        for (var i = 0; i < count; i++)
        {
            results[i].Outcome.Should().Be(i % 2 == 0 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted, $"message {i}: {results[i]}");
        }

        var stored = await EximCopiesAsync(run, count / 2);
        for (var i = 1; i < count; i += 2)
        {
            stored.GetValueOrDefault(recipients[i]).Should().Be(1, recipients[i]);
        }
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task Mixed_outcomes_through_the_pool_meet_no_nonmail_drop_and_match_Exims_Maildir(bool chunking, bool tlsAndAuth)
    {
        // Exim's counting against the pool's tally: refused and deferred recipients (RSET counted after them), refusals
        // after the data (data taken: the next RSET free), DATA and BDAT. A tally that counted less than Exim would show
        // as a drop (a retry); every caller gets its outcome at the first attempt.
        TestServers.RequireListening(TestServers.EximPort);
        // With STARTTLS and AUTH too: Exim lets the EHLO after STARTTLS and one AUTH go uncounted.
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = tlsAndAuth ? SmtpTlsMode.StartTlsRequired : SmtpTlsMode.None,
            Credentials = tlsAndAuth ? new System.Net.NetworkCredential(TestServers.User, TestServers.Password) : null,
            EhloName = "client.example.test",
            MaxConnections = 2,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);
        var run = Guid.NewGuid().ToString("N")[..10];
        const int count = 180;
        var cases = Enumerable.Range(0, count).Select(i =>
        {
            var good = $"mx-{run}-{i}@example.test";
            var (from, to) = (i % 6) switch
            {
                0 => ("sender@example.test", new[] { good }),
                1 => ("sender@example.test", [$"unknown-{run}-{i}@example.test"]),
                2 => ("sender@example.test", ["tempfail@example.test"]),
                3 => ("sender@example.test", [$"nosuch-{run}-{i}@example.test", "tempfail@example.test"]),
                4 => ("eod-reject@example.test", [good]),
                _ => ("eod-tempfail@example.test", [good]),
            };
            return (Good: good, Message: SmtpMessage.FromBytes(new SmtpEnvelope(from, to), Encoding.ASCII.GetBytes($"Subject: mixed {run} {i}\r\n\r\nbody {i}\r\n")));
        }).ToList();

        var results = await Task.WhenAll(cases.Select(c => Task.Run(() => sender.SendAsync(c.Message))));

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        for (var i = 0; i < count; i++)
        {
            var because = $"message {i}: {results[i]}";
            results[i].Outcome.Should().Be(i % 6 == 0 ? SmtpSendOutcome.Accepted : SmtpSendOutcome.Refused, because);
            results[i].Attempts.Should().Be(1, because);
            if (i % 6 is 4 or 5)
            {
                results[i].FinalReply!.Code.Should().Be(i % 6 == 4 ? 554 : 451, because);
            }
        }

        statistics.Retries.Should().Be(0);
        var stored = await EximCopiesAsync(run, count / 6);
        stored.Keys.Should().BeEquivalentTo(cases.Where((c, i) => i % 6 == 0).Select(c => c.Good));
        stored.Values.Should().OnlyContain(copies => copies == 1);
    }

    [Fact]
    public async Task A_steady_flow_of_refused_messages_meets_Exims_nonmail_limit_at_most_once()
    {
        // Breaker 18b: a fresh connection (none counted) was not held to the limit, so every one took a full batch of
        // refusals and was dropped with "554 Too many nonmail commands" (16 drops, Retries 64 for 200 messages). Once a
        // session was ended at a limit, fresh connections are held to it too: the first burst is the only drop.
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
        });
        var run = Guid.NewGuid().ToString("N")[..10];

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", $"unknown-{run}-{i}@example.test"),
            Encoding.ASCII.GetBytes($"Subject: steady {run} {i}\r\n\r\nbody {i}\r\n")))));

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Refused && r.Attempts <= 2, results.FirstOrDefault(r => r.Outcome != SmtpSendOutcome.Refused || r.Attempts > 2)?.ToString());
        statistics.Retries.Should().BeLessThanOrEqualTo(16, "only the first connection's batch can pass the limit");
    }

    [Fact]
    public async Task Sequential_sends_with_a_NOOP_before_each_reuse_and_refused_recipients_cost_no_caller_an_attempt()
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            NoopAfterIdle = TimeSpan.FromTicks(1),
        });
        var run = Guid.NewGuid().ToString("N")[..10];
        var results = new List<SmtpSendResult>();
        for (var i = 0; i < 30; i++)
        {
            var recipient = i % 3 == 0 ? $"nm-{run}-{i}@example.test" : $"unknown-{run}-{i}@example.test";
            results.Add(await sender.SendAsync(new SmtpEnvelope("sender@example.test", recipient), Encoding.ASCII.GetBytes($"Subject: noop {run} {i}\r\n\r\nx\r\n")));
        }

        output.WriteLine(sender.GetStatistics().ToString());
        for (var i = 0; i < results.Count; i++)
        {
            output.WriteLine($"{i}: {results[i].Outcome} attempts {results[i].Attempts}");
            results[i].Outcome.Should().Be(i % 3 == 0 ? SmtpSendOutcome.Accepted : SmtpSendOutcome.Refused, results[i].ToString());
        }

        results.Should().OnlyContain(r => r.Attempts == 1);
    }

    [Fact]
    public async Task Past_Exims_1000_messages_on_one_connection_every_caller_is_Accepted_once()
    {
        // smtp_accept_max_per_connection (1000): Exim 4.96 answers the 1001st MAIL "421 too many messages in this
        // connection" and, unlike after its nonmail limit, keeps the connection open (the commands behind get 503).
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            MaxMessagesPerConnection = 0,
            AcquireTimeout = TimeSpan.FromMinutes(5),
        });
        const int count = 1040;
        var run = Guid.NewGuid().ToString("N")[..10];
        var recipients = Enumerable.Range(0, count).Select(i => $"pc-{run}-{i}@example.test").ToArray();

        var results = await Task.WhenAll(recipients.Select((recipient, i) => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", recipient),
            Encoding.ASCII.GetBytes($"Subject: per connection {run} {i}\r\n\r\nbody {i}\r\n")))));

        output.WriteLine(sender.GetStatistics().ToString());
        foreach (var result in results.Where(r => r.Outcome != SmtpSendOutcome.Accepted || r.Attempts > 1).Take(40))
        {
            output.WriteLine(result.ToString());
        }

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, results.FirstOrDefault(r => r.Outcome != SmtpSendOutcome.Accepted)?.ToString());
        var stored = await EximCopiesAsync(run, count);
        stored.Values.Sum().Should().Be(count);
        stored.Values.Should().OnlyContain(copies => copies == 1);
    }

    /// <summary>Waits for <paramref name="expected"/> of this run's copies in Exim's Maildir (and a moment for any extra), then counts them by Envelope-to.</summary>
    internal static async Task<Dictionary<string, int>> EximCopiesAsync(string run, int expected)
    {
        var directory = Path.Combine(TestServers.EximMaildir, "new");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var counts = new Dictionary<string, int>(StringComparer.Ordinal);
            foreach (var file in Directory.Exists(directory) ? Directory.GetFiles(directory) : [])
            {
                string text;
                try
                {
                    text = await File.ReadAllTextAsync(file);
                }
                catch (FileNotFoundException)
                {
                    continue;
                }

                var start = text.IndexOf("Envelope-to: ", StringComparison.Ordinal);
                if (start < 0 || !text.Contains(run, StringComparison.Ordinal))
                {
                    continue;
                }

                var end = text.IndexOf('\r', start);
                var recipient = text[(start + "Envelope-to: ".Length)..end];
                counts[recipient] = counts.GetValueOrDefault(recipient) + 1;
            }

            if (counts.Values.Sum() >= expected || DateTime.UtcNow > deadline)
            {
                return counts;
            }

            await Task.Delay(100);
        }
    }
}
