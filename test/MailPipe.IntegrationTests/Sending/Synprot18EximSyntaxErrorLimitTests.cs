using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Session 18: Exim answers a RCPT with a domain literal "501 ...: domain literals not allowed" (allow_domain_literals is
/// false), a syntax error counted against smtp_max_synprot_errors (3, for the whole connection, not per transaction); the
/// fourth is answered "501-...", "501 Too many syntax or protocol errors" and the connection is closed without reading
/// what follows. The transactions pipelined behind were never processed.
/// </summary>
public sealed class Synprot18EximSyntaxErrorLimitTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_messages_pipelined_after_Exims_synprot_drop_are_NotSent(bool chunking)
    {
        TestServers.RequireListening(TestServers.EximPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.HelloAsync("client.example.test");
        var run = Guid.NewGuid().ToString("N")[..10];
        var good = Enumerable.Range(0, 4).Select(i => $"sx-{run}-{i}@example.test").ToArray();
        SmtpMessage Good(int i) => SmtpMessage.FromBytes(new SmtpEnvelope("sender@example.test", good[i]), Encoding.ASCII.GetBytes($"Subject: synprot {run} {i}\r\n\r\nbody {i}\r\n"));
        var literals = new SmtpEnvelope("sender@example.test", Enumerable.Range(0, 4).Select(i => $"lit{i}-{run}@[127.0.0.1]").ToArray());
        SmtpMessage[] messages =
        [
            Good(0),
            SmtpMessage.FromBytes(literals, Encoding.ASCII.GetBytes($"Subject: literals {run}\r\n\r\nx\r\n")),
            Good(1),
            Good(2),
        ];

        var results = await session.SendBatchAsync(messages);

        var all = string.Join("\n", results);
        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, all);
        results[1].Outcome.Should().Be(SmtpSendOutcome.Refused, all);
        results[1].Recipients.Should().OnlyContain(r => r.Reply != null && r.Reply.Code == 501, all);
        results[2].Outcome.Should().Be(SmtpSendOutcome.NotSent, all);
        results[3].Outcome.Should().Be(SmtpSendOutcome.NotSent, all);
        results[2].IsTransientFailure.Should().BeTrue(all);
        session.IsConnected.Should().BeFalse();
    }
}
