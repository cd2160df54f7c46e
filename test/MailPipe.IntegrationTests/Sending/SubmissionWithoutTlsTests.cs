using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Sending;

/// <summary>
/// Postfix's submission port (STARTTLS required before MAIL) reached without TLS, a common misconfiguration: with
/// PIPELINING and CHUNKING, MAIL, RCPT and BDAT LAST are each answered 530 5.7.0, then Postfix closes with
/// "221 2.7.0 Error: I can break rules, too. Goodbye." The send was reported Unknown ("it may have been delivered"),
/// so a caller would not retry and not fix the setting; MAIL was refused and nothing was delivered.
/// </summary>
public class SubmissionWithoutTlsTests
{
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task A_send_to_the_submission_port_without_STARTTLS_is_Refused_with_530(bool chunking, bool pipelining)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking, UsePipelining = pipelining });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.None, "client.example.test");
        var recipient = TestServers.UniqueRecipient("notls");

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", recipient), "Subject: no tls\r\n\r\nbody\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.MailReply!.Code.Should().Be(530);
        result.IsTransientFailure.Should().BeFalse();
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse();
    }

    [Fact]
    public async Task The_shared_sender_reports_it_Refused_too()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixSubmissionPort, TlsMode = SmtpTlsMode.None });

        var result = await sender.SendAsync(new SmtpEnvelope("sender@example.test", TestServers.UniqueRecipient("notls")), "Subject: no tls\r\n\r\nbody\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.MailReply!.Code.Should().Be(530);
    }
}
