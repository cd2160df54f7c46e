using System.Text;
using MailPipe.IntegrationTests.Pooling;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Session 18: a reverse-path Exim refuses at MAIL (550, exim-up.sh's acl_check_mail for refuse-mail@example.test),
/// pipelined in one batch with good messages. Its RCPTs get "503 sender not yet given" and its DATA or BDAT "503 Valid
/// RCPT command must precede DATA/BDAT". Exim counts syntax and protocol errors against smtp_max_synprot_errors (3) and
/// drops the connection past it, but with PIPELINING advertised Exim 4.96 counts neither a RCPT right after a refused
/// MAIL nor a DATA/BDAT right after the RCPTs (the order MailPipe always writes): no error is counted, the session stays
/// open, every message gets its own outcome and each good one is delivered once.
/// </summary>
public sealed class Synprot18EximRefusedSenderTests
{
    private const string RefusedSender = "refuse-mail@example.test";

    /// <summary>1 MiB: four chunks of the default 256 KiB.</summary>
    private static readonly string LargeBody = string.Concat(Enumerable.Repeat(new string('x', 1022) + "\r\n", 1024));

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Refused_senders_in_a_pipelined_batch_are_Refused_and_the_good_messages_delivered_once_on_an_open_session(bool chunking, bool large)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        session.Capabilities.SupportsChunking.Should().BeTrue();
        var run = Guid.NewGuid().ToString("N")[..10];
        const int count = 15; // 5 refused senders with 2 recipients each: 15 replies of 503, five times Exim's limit
        var recipients = Enumerable.Range(0, count).Select(i => $"sp-{run}-{i}@example.test").ToArray();
        var messages = recipients.Select((recipient, i) => i % 3 == 0
                ? SmtpMessage.FromBytes(
                    new SmtpEnvelope(RefusedSender, recipient, $"sp2-{run}-{i}@example.test"),
                    Encoding.ASCII.GetBytes($"Subject: refused sender {run} {i}\r\n\r\n{(large ? LargeBody : "x\r\n")}"))
                : SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", recipient), Encoding.ASCII.GetBytes($"Subject: good {run} {i}\r\n\r\nbody {i}\r\n")))
            .ToList();

        var results = await session.SendBatchAsync(messages);

        results.Should().HaveCount(count);
        for (var i = 0; i < count; i++)
        {
            var because = $"message {i}: {results[i]}";
            if (i % 3 == 0)
            {
                results[i].Outcome.Should().Be(SmtpSendOutcome.Refused, because);
                results[i].MailReply!.Code.Should().Be(550, because);
                results[i].Recipients.Should().OnlyContain(r => r.Reply == null || r.Reply.Code == 503, because);
                results[i].IsTransientFailure.Should().BeFalse(because);
            }
            else
            {
                results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
            }
        }

        session.IsConnected.Should().BeTrue("Exim counted no protocol error for the pipelined 503s");
        (await session.NoopAsync()).Code.Should().Be(250);
        var stored = await Breaker18EximLimitTests.EximCopiesAsync(run, count - 5);
        stored.Keys.Should().BeEquivalentTo(recipients.Where((_, i) => i % 3 != 0));
        stored.Values.Should().OnlyContain(copies => copies == 1);
    }
}
