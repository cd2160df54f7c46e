using System.Text;
using MailPipe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Session 18: recipients Exim answers with a syntax error (a domain literal: "501 ...: domain literals not allowed")
/// count against smtp_max_synprot_errors (3) for the whole connection; past it Exim answers "501 Too many syntax or
/// protocol errors" and closes the connection. The messages the pool had pipelined behind are NotSent and retried on a
/// fresh connection: each good recipient gets exactly one copy, and no caller is left with Unknown.
/// </summary>
public sealed class Synprot18EximSyntaxErrorLimitTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Messages_behind_Exims_synprot_drop_are_retried_and_every_good_recipient_gets_one_copy(bool chunking)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var run = Guid.NewGuid().ToString("N")[..10];
        const int count = 40;
        var recipients = Enumerable.Range(0, count).Select(i => $"sxp-{run}-{i}@example.test").ToArray();

        // Every 5th message has two domain-literal recipients before its good one: the fourth such 501 ends a session.
        var results = await Task.WhenAll(recipients.Select((recipient, i) => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope("sender@example.test", i % 5 == 0 ? new[] { $"a{i}-{run}@[127.0.0.1]", $"b{i}-{run}@[127.0.0.1]", recipient } : new[] { recipient }),
            Encoding.ASCII.GetBytes($"Subject: synprot {run} {i}\r\n\r\nbody {i}\r\n")))));

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        foreach (var result in results.Where(r => r.Attempts > 1 || r.Outcome != SmtpSendOutcome.Accepted))
        {
            output.WriteLine(result.ToString());
        }

        for (var i = 0; i < count; i++)
        {
            var because = $"message {i}: {results[i]}";
            if (i % 5 == 0 && results[i].Outcome == SmtpSendOutcome.NotSent)
            {
                // Its own RCPT met the limit (its MAIL was answered, so only the one retry), and so did its retry on a
                // connection that had counted errors before: nothing of it was delivered, and the caller is told so.
                results[i].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, because);
                continue;
            }

            results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
            results[i].AcceptedRecipients.Select(r => r.Address).Should().Equal([recipients[i]], because);
        }

        statistics.Retries.Should().BeGreaterThan(0, "Exim dropped connections at its synprot limit");
        var delivered = recipients.Where((_, i) => results[i].Outcome == SmtpSendOutcome.Accepted).ToList();
        var stored = await Breaker18EximLimitTests.EximCopiesAsync(run, delivered.Count);
        stored.Keys.Should().BeEquivalentTo(delivered);
        stored.Values.Should().OnlyContain(copies => copies == 1);
    }
}
