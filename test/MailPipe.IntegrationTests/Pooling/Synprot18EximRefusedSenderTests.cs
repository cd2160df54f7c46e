using System.Text;
using MailPipe.IntegrationTests.Support;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Session 18: the shared sender coalesces callers whose reverse-path Exim refuses at MAIL (550, refuse-mail@example.test
/// in exim-up.sh) into pipelined batches with good ones. The 503s Exim then gives the pipelined RCPT and DATA/BDAT are not
/// counted against smtp_max_synprot_errors with PIPELINING (Exim 4.96), so no connection is dropped for them; only the
/// RSET after each refused transaction counts (smtp_accept_max_nonmail), which the pool's tally keeps under the limit.
/// </summary>
public sealed class Synprot18EximRefusedSenderTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Refused_senders_batched_with_good_ones_are_Refused_at_the_first_attempt_and_the_good_ones_delivered_once(bool chunking)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.EximPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 2,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var run = Guid.NewGuid().ToString("N")[..10];
        const int count = 120;
        var recipients = Enumerable.Range(0, count).Select(i => $"sps-{run}-{i}@example.test").ToArray();

        var results = await Task.WhenAll(recipients.Select((recipient, i) => Task.Run(() => sender.SendAsync(
            new SmtpEnvelope(i % 3 == 0 ? "refuse-mail@example.test" : "sender@example.test", recipient),
            Encoding.ASCII.GetBytes($"Subject: synprot {run} {i}\r\n\r\nbody {i}\r\n")))));

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        for (var i = 0; i < count; i++)
        {
            var because = $"message {i}: {results[i]}";
            results[i].Outcome.Should().Be(i % 3 == 0 ? SmtpSendOutcome.Refused : SmtpSendOutcome.Accepted, because);
            results[i].Attempts.Should().Be(1, because);
            if (i % 3 == 0)
            {
                results[i].MailReply!.Code.Should().Be(550, because);
            }
        }

        statistics.Retries.Should().Be(0, "no connection was dropped");
        var stored = await Breaker18EximLimitTests.EximCopiesAsync(run, count - (count / 3));
        stored.Keys.Should().BeEquivalentTo(recipients.Where((_, i) => i % 3 != 0));
        stored.Values.Should().OnlyContain(copies => copies == 1);
    }
}
