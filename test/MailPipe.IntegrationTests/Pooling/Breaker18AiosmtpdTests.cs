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
}
