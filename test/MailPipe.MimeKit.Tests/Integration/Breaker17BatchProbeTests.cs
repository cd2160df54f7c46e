using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>
/// Breaker17 probe of issue #14: <c>SendBatchAsync</c> of MimeMessages, on a session and through the pooled sender,
/// against Postfix: one result per message in order, the same MimeMessage twice in a batch written whole each time,
/// a partial acceptance (tempfail@ 450) reported per recipient, every delivered copy as MimeKit wrote it.
/// </summary>
[Trait("Category", "Integration")]
public sealed class Breaker17BatchProbeTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task A_batch_of_MimeMessages_gives_one_result_per_message_and_each_copy_arrives_whole(bool chunking, bool pooled)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var a = TestServers.UniqueRecipient("b17-batch-a");
        var b = TestServers.UniqueRecipient("b17-batch-b");
        var c = TestServers.UniqueRecipient("b17-batch-c");
        var shared = Message("shared", a, string.Concat(Enumerable.Repeat("Grüße aus dem Stapel.\n", 20000)));
        var partial = Message("partial", b, "Half refused.\n");
        partial.Cc.Add(MailboxAddress.Parse("tempfail@example.test"));
        var third = Message("third", c, "Third.\n");
        MimeMessage[] batch = [shared, partial, shared, third];
        var expected = batch.Select(MimeTestMessages.ExpectedData).ToArray();

        IReadOnlyList<SmtpSendResult> results;
        if (pooled)
        {
            await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test", MaxConnections = 1 });
            results = await sender.SendBatchAsync(batch);
        }
        else
        {
            await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
            await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
            await session.EhloAsync("client.example.test");
            results = await session.SendBatchAsync(batch);
        }

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        results[1].Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450);
        var storedA = await Maildir.WaitForPostfixAsync(a, 2);
        storedA.Select(s => Encoding.Latin1.GetString(Maildir.StripTraceHeaders(s))).Should().AllBe(Encoding.Latin1.GetString(expected[0]), "the same MimeMessage twice in one batch is written whole each time");
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(b))[0]).Should().Equal(expected[1]);
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(c))[0]).Should().Equal(expected[3]);
    }

    private static MimeMessage Message(string subject, string to, string text)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.MessageId = $"{Guid.NewGuid():N}@example.test";
        message.Date = new DateTimeOffset(2026, 12, 6, 10, 0, 0, TimeSpan.Zero);
        message.Body = new TextPart("plain") { Text = text };
        return message;
    }
}
