using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>Breaker11 (session 8): a batch whose streamed content fails, against smtp-sink (PIPELINING, DATA, no CHUNKING).</summary>
public sealed class Breaker11BatchTests
{
    /// <summary>
    /// With DATA the only way to abandon a message whose content fails is to close the connection; the messages after
    /// it were given that message's own exception ("The message content has a NUL octet at offset ...",
    /// ExtensionNotSupported, not transient), as if their own content had been refused.
    /// </summary>
    [Fact]
    public async Task The_messages_after_a_failed_DATA_content_are_NotSent_for_the_closed_connection()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(30) });
        (await session.ConnectAsync(TestServers.Host, TestServers.SinkPort, SmtpTlsMode.None, "client.test")).Code.Should().Be(250);
        session.Capabilities.SupportsChunking.Should().BeFalse();
        var withNul = new MemoryStream([.. "Subject: nul\r\n\r\nbefore"u8, 0, .. "after\r\n"u8]);
        SmtpMessage[] messages =
        [
            SmtpMessage.FromStream(new SmtpEnvelope("a@example.test", "b@example.test"), withNul),
            SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "c@example.test"), Encoding.ASCII.GetBytes("Subject: clean\r\n\r\nclean\r\n")),
        ];

        var results = await session.SendBatchAsync(messages);

        results[0].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[0].Exception.Should().BeOfType<SmtpException>().Which.InnerException.Should().BeOfType<SmtpContentRefusedException>();
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var second = results[1].Exception.Should().BeOfType<SmtpException>().Which;
        second.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        second.Message.Should().NotContain("NUL octet at offset");
        results[1].IsTransientFailure.Should().BeTrue("nothing of it was sent and another connection may send it");
    }
}
