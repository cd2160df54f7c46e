using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Resilience.Tests.Support;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>
/// breaker22 probe that held: a batch through the resilient pooled sender against the real Postfix, each message to
/// tempfail@ (450) and a unique recipient of its own, one to a unique recipient alone: each retry goes only to
/// tempfail@, every unique recipient has exactly one copy, every result is Accepted with its attempts.
/// </summary>
[Trait("Category", "Integration")]
public sealed class Breaker22BatchRetryProbeTests
{
    private const string TempFail = "tempfail@example.test";

    [Fact]
    public async Task A_batch_retries_only_tempfail_in_each_message_and_delivers_every_other_recipient_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        string[] unique = [TestServers.UniqueRecipient("b22-batch-a"), TestServers.UniqueRecipient("b22-batch-b"), TestServers.UniqueRecipient("b22-batch-c")];
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = proxy.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
        }).WithStandardResilience(options =>
        {
            options.Retry.MaxRetryAttempts = 2;
            options.Retry.Delay = TimeSpan.Zero;
            options.Retry.ThrottledDelay = TimeSpan.Zero;
        });

        var results = await sender.SendBatchAsync([Message(TempFail, unique[0]), Message(unique[1], TempFail), Message(unique[2])]).WaitAsync(TimeSpan.FromSeconds(60));

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        results.Select(r => r.Attempts).Should().Equal(3, 3, 1);
        results[0].Recipients.Select(r => r.Reply!.Code).Should().Equal(450, 250);
        results[1].Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450);
        proxy.CountLines($"RCPT TO:<{TempFail}>").Should().Be(6, proxy.ClientTranscript);
        foreach (var recipient in unique)
        {
            proxy.CountLines($"RCPT TO:<{recipient}>").Should().Be(1, proxy.ClientTranscript);
            await Maildir.WaitForPostfixAsync(recipient, 1);
        }

        // Every copy that could come has come (the last message's transaction was answered 250 after its data).
        await Task.Delay(TimeSpan.FromSeconds(2));
        unique.Select(r => Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, r, "new")).Length).Should().Equal(1, 1, 1);
    }

    private static SmtpMessage Message(params string[] recipients) => SmtpMessage.FromBytes(
        new SmtpEnvelope("sender@example.test", recipients),
        Encoding.ASCII.GetBytes($"From: <sender@example.test>\r\nSubject: breaker22 batch\r\nMessage-Id: <{Guid.NewGuid():N}@mailpipe.test>\r\n\r\nHello.\r\n"));
}
