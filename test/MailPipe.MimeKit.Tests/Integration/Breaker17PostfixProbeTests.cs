using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>Breaker17 probes of issue #14 against the real Postfix: 2543 (no 8BITMIME) and 2544 (no SMTPUTF8).</summary>
[Trait("Category", "Integration")]
public sealed class Breaker17PostfixProbeTests
{
    private const int NoEightBitMimePort = 2543;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_parsed_message_with_a_raw_UTF8_header_to_a_server_without_8BITMIME_is_NotSent_typed_and_never_delivered(bool chunking)
    {
        TestServers.RequireListening(NoEightBitMimePort);
        var to = TestServers.UniqueRecipient("mimekit-raw8-no8bit");
        var raw = $"From: sender@example.test\r\nTo: {to}\r\nSubject: Grüße raw\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
            + "Content-Transfer-Encoding: 7bit\r\n\r\nHello.\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, NoEightBitMimePort);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "the server does not take 8-bit octets and the message was not sent: {0}", result.Exception?.Message);
        result.Exception.Should().NotBeNull();
        await Task.Delay(TimeSpan.FromSeconds(2));
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, to)).Should().BeFalse();
    }
}
