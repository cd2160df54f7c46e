using System.Text;
using MailPipe.Tests.Support;
using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>breaker22: a retry to the recipients still to do keeps the MAIL parameters of the first attempt.</summary>
public class Breaker22RetryMailParameterTests
{
    private static ResiliencePipeline<SmtpSendResult> Retry(int retries) =>
        SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = retries, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero });

    [Fact]
    public async Task A_retry_to_the_ascii_recipient_of_a_message_that_needed_SMTPUTF8_still_declares_SMTPUTF8()
    {
        // jörg@ accepts; later@ answers 450. The retry goes to later@ only, with the same UTF-8 header content: its MAIL
        // must still say SMTPUTF8 (the copy keeps "the same MAIL parameters"), else UTF-8 headers go out undeclared.
        await using var server = ScriptedSmtpServer.Start(
        [
            "S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250-8BITMIME", "S: 250 SMTPUTF8",
            "C: MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8", "S: 250 ok",
            "C: RCPT TO:<jörg@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 450 4.2.0 try again later",
            "C: DATA", "S: 354 go",
            "C: To: jörg@example.test, later@example.test", "C: Subject: grüße", "C: ", "C: Hello.", "C: .", "S: 250 2.0.0 queued as A",
            "C: MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            "C: To: jörg@example.test, later@example.test", "C: Subject: grüße", "C: ", "C: Hello.", "C: .", "S: 250 2.0.0 queued as B",
        ]);
        await using var session = await ConnectedAsync(server);
        var message = SmtpMessage.FromBytes(
            new SmtpEnvelope(Sender, "jörg@example.test", "later@example.test"),
            Encoding.UTF8.GetBytes("To: jörg@example.test, later@example.test\r\nSubject: grüße\r\n\r\nHello.\r\n"));

        var result = await Retry(2).SendWithRetryAsync(message, session.SendAsync).Safe();

        var mails = server.ReceivedText.Split("\r\n").Where(l => l.StartsWith("MAIL FROM", StringComparison.Ordinal)).ToArray();
        mails.Should().HaveCountGreaterThan(1).And.AllBe("MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8", "the retry's MAIL declares what the first attempt's did");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 250);
        await server.WaitAsync();
    }
}
