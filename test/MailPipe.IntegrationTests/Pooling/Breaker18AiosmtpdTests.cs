using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// Breaker 18: aiosmtpd (no PIPELINING) through the shared sender: a line over 1000 octets in the content is answered
/// "500 Line too long" after the whole data (nothing stored), a verdict on that message alone: Refused, permanent, and
/// the messages around it on the same connection are delivered once.
/// </summary>
public sealed class Breaker18AiosmtpdTests
{
    [Fact]
    public async Task A_line_too_long_refuses_only_its_message_and_the_connection_goes_on()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.AiosmtpdPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
        });
        var recipients = Enumerable.Range(0, 9).Select(i => TestServers.UniqueRecipient("b18-aio")).ToArray();
        var contents = recipients.Select((r, i) => Encoding.ASCII.GetBytes(
            $"Subject: b18 {i}\r\n\r\n" + (i % 3 == 1 ? new string('y', 1200) : "short") + "\r\nend\r\n")).ToArray();

        var results = await Task.WhenAll(recipients.Select((r, i) => Task.Run(() => sender.SendAsync(new SmtpEnvelope("sender@example.test", r), contents[i]))));

        for (var i = 0; i < recipients.Length; i++)
        {
            if (i % 3 == 1)
            {
                results[i].Outcome.Should().Be(SmtpSendOutcome.Refused, results[i].ToString());
                results[i].FinalReply!.Code.Should().Be(500, results[i].ToString());
                results[i].IsTransientFailure.Should().BeFalse();
            }
            else
            {
                results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[i].ToString());
                (await AiosmtpdStore.WaitForAsync(recipients[i])).Should().Equal(contents[i]);
            }

            results[i].Attempts.Should().Be(1);
        }

        var stored = Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json").Select(File.ReadAllText).ToList();
        for (var i = 1; i < recipients.Length; i += 3)
        {
            stored.Should().NotContain(json => json.Contains(recipients[i], StringComparison.Ordinal), "a refused message is not stored");
        }

        sender.GetStatistics().Opened.Should().Be(1, "a refusal of the data is no reason to drop the connection");
    }

    [Fact]
    public async Task UTF8_mailboxes_and_headers_go_with_SMTPUTF8_and_are_stored_as_sent()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.AiosmtpdPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            MaxConnections = 1,
        });
        var recipients = Enumerable.Range(0, 4).Select(i => TestServers.UniqueRecipient(i % 2 == 0 ? "b18-j\u00f6rg" : "b18-plain")).ToArray();
        var contents = recipients.Select((r, i) => Encoding.UTF8.GetBytes($"From: J\u00f6rg <s\u00e9nder@example.test>\r\nTo: <{r}>\r\nSubject: gr\u00fc\u00dfe {i}\r\n\r\nna\u00efve\r\n")).ToArray();

        var results = await Task.WhenAll(recipients.Select((r, i) => Task.Run(() => sender.SendAsync(new SmtpEnvelope(i % 2 == 0 ? "s\u00e9nder@example.test" : "sender@example.test", r), contents[i]))));

        for (var i = 0; i < recipients.Length; i++)
        {
            results[i].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[i].ToString());
            (await AiosmtpdStore.WaitForAsync(recipients[i])).Should().Equal(contents[i]);
        }

        var utf8 = Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json").Select(File.ReadAllText)
            .Single(json => json.Contains(recipients[0], StringComparison.Ordinal));
        utf8.Should().Contain("\"smtputf8\": true");
    }
}
