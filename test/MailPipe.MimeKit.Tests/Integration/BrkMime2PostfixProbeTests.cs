using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>brk-mime2 probes against the real Postfix 2525 (8BITMIME, SMTPUTF8, CHUNKING).</summary>
[Trait("Category", "Integration")]
public sealed class BrkMime2PostfixProbeTests
{
    [Fact]
    public async Task A_parsed_ASCII_message_to_an_A_label_domain_reaches_Postfix_without_SMTPUTF8_at_the_address_as_written()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var local = $"alabel-{Guid.NewGuid():N}";
        var raw = $"From: sender@example.test\r\nTo: {local}@xn--bcher-kva.example\r\nSubject: ascii\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAll ASCII.\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        session.Capabilities.SupportsSmtpUtf8.Should().BeTrue();

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Envelope.SmtpUtf8.Should().BeFalse("every address and header field was written in ASCII");
        var stored = Encoding.UTF8.GetString((await Maildir.WaitForPostfixAsync($"{local}@xn--bcher-kva.example"))[0]);
        stored.Should().Contain($"Delivered-To: {local}@xn--bcher-kva.example\r\n").And.NotContain("UTF8SMTP", "Postfix's Received field says 'with UTF8SMTP' for an SMTPUTF8 transaction");
    }
    [Fact]
    public async Task A_mailbox_written_plain_in_To_and_quoted_in_Cc_is_delivered_once()
    {
        // "dup"@example.test is the mailbox dup@example.test (RFC 5321 §4.1.2, RFC 5322 §3.4.1): MimeKit keeps the
        // quotes, and the envelope held both forms, two RCPTs for one mailbox.
        TestServers.RequireListening(TestServers.PostfixPort);
        var local = $"dup-{Guid.NewGuid():N}";
        var raw = $"From: sender@example.test\r\nTo: {local}@example.test\r\nCc: \"{local}\"@example.test\r\nSubject: once\r\n\r\nOnce.\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));
        message.GetSmtpEnvelope().Recipients.Select(r => r.Address).Should().Equal($"{local}@example.test");
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Recipients.Should().ContainSingle("one RCPT: Postfix stores one copy per RCPT, two for the same mailbox");
        await Maildir.WaitForPostfixAsync($"{local}@example.test");
    }
    [Fact]
    public async Task The_same_MimeMessage_four_times_in_a_batch_through_the_default_pool_arrives_whole_each_time()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var to = TestServers.UniqueRecipient("brk-mime2-pool");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "pool";
        message.MessageId = $"{Guid.NewGuid():N}@example.test";
        var text = new TextPart("plain") { ContentTransferEncoding = ContentEncoding.EightBit };
        text.SetText("utf-8", string.Concat(Enumerable.Range(0, 40000).Select(i => $"Zeile {i:D6} Grüße aus dem Pool.\n")));
        message.Body = text;
        var expected = Encoding.Latin1.GetString(MimeTestMessages.ExpectedData(message));
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test" });

        var results = await sender.SendBatchAsync([message, message, message, message]);

        results.Select(r => r.Outcome).Should().AllBeEquivalentTo(SmtpSendOutcome.Accepted);
        var stored = await Maildir.WaitForPostfixAsync(to, 4);
        stored.Select(s => Encoding.Latin1.GetString(Maildir.StripTraceHeaders(s))).Should().AllBe(expected);
    }
}
