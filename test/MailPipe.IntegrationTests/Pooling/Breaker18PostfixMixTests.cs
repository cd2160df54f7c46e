using System.Text;
using MailPipe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Breaker 18: a large mixed stream through the shared sender against Postfix (refused and deferred recipients, refusals
/// after the data inside pipelined batches), with the pool retiring connections near the nonmail limit on the way: every
/// caller's result matches what Postfix stored, and no caller pays a failed attempt.
/// </summary>
public sealed class Breaker18PostfixMixTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Three_hundred_mixed_messages_get_results_that_match_the_Maildirs(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var run = Guid.NewGuid().ToString("N")[..8];
        const int count = 300;
        var cases = Enumerable.Range(0, count).Select(i =>
        {
            var good = $"mix-{run}-{i}@example.test";
            var (from, to) = (i % 6) switch
            {
                0 => ("sender@example.test", new[] { good }),
                1 => ("sender@example.test", [$"unknown-{run}-{i}@example.test"]),
                2 => ("sender@example.test", ["tempfail@example.test"]),
                3 => ("sender@example.test", [good, $"unknown-{run}-{i}@example.test", "tempfail@example.test"]),
                4 => ("eod-reject@example.test", [good]),
                _ => ("eod-tempfail@example.test", [good]),
            };
            return (Good: good, Message: SmtpMessage.FromBytes(new SmtpEnvelope(from, to), Encoding.ASCII.GetBytes($"Subject: mix {run} {i}\r\n\r\nbody {i}\r\n")));
        }).ToList();

        var results = await Task.WhenAll(cases.Select(c => Task.Run(() => sender.SendAsync(c.Message))));

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        for (var i = 0; i < count; i++)
        {
            var result = results[i];
            var because = $"message {i}: {result}";
            result.Attempts.Should().Be(1, because);
            switch (i % 6)
            {
                case 0:
                    result.Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
                    break;
                case 1 or 2:
                    result.Outcome.Should().Be(SmtpSendOutcome.Refused, because);
                    result.IsTransientFailure.Should().Be(i % 6 == 2, because);
                    break;
                case 3:
                    result.Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
                    result.Recipients.Select(r => r.Reply!.Code).Should().Equal([250, 550, 450], because);
                    break;
                default:
                    result.Outcome.Should().Be(SmtpSendOutcome.Refused, because);
                    result.FinalReply!.Code.Should().Be(i % 6 == 4 ? 554 : 451, because);
                    break;
            }
        }

        foreach (var (good, i) in cases.Select((c, i) => (c.Good, i)).Where(p => p.i % 6 is 0 or 3))
        {
            (await Maildir.WaitForPostfixAsync(good)).Should().HaveCount(1, good);
        }

        // The accepted ones are all stored; Postfix's local delivery of any extra copy would follow within moments.
        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var (good, i) in cases.Select((c, i) => (c.Good, i)))
        {
            var directory = Path.Combine(TestServers.PostfixMaildir, good, "new");
            var copies = Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
            copies.Should().Be(i % 6 is 0 or 3 ? 1 : 0, $"message {i} to {good}");
        }

        statistics.Retries.Should().Be(0);
        statistics.Messages.Should().Be(count);
    }

    [Fact]
    public async Task Connections_retired_at_the_nonmail_limit_are_replaced_under_a_limit_of_4_connections_without_a_failed_caller()
    {
        // Postfix 2542 greets a 5th connection from one client with 421. Refusals make the pool retire connections near
        // the nonmail limit (QUIT) and open new ones while the server may still count the old ones.
        var port = int.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_LIMIT4_PORT"), out var p) ? p : 2542;
        TestServers.RequireListening(port);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 4,
            Session = new SmtpSessionOptions { UseChunking = false },
        });
        var run = Guid.NewGuid().ToString("N")[..8];
        const int count = 240;
        var recipients = Enumerable.Range(0, count).Select(i => i % 2 == 0 ? $"unknown-{run}-{i}@example.test" : $"l4-{run}-{i}@example.test").ToArray();

        var results = await Task.WhenAll(recipients.Select((r, i) => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", r), Encoding.ASCII.GetBytes($"Subject: l4 {run} {i}\r\n\r\nx\r\n")))));

        output.WriteLine(sender.GetStatistics().ToString());
        for (var i = 0; i < count; i++)
        {
            results[i].Outcome.Should().Be(i % 2 == 0 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted, $"message {i}: {results[i]}");
        }

        for (var i = 1; i < count; i += 2)
        {
            (await Maildir.WaitForPostfixAsync(recipients[i])).Should().HaveCount(1);
        }
    }
}
