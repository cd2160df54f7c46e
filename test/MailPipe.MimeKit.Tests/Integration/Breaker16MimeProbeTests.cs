using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>Session 16 breaker probes of MailPipe.MimeKit against the real servers, checked byte by byte.</summary>
[Trait("Category", "Integration")]
public sealed class Breaker16MimeProbeTests
{
    private static int No8BitMimePort => int.Parse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_NO8BITMIME_PORT") ?? "2543", System.Globalization.CultureInfo.InvariantCulture);

    private static int NoSmtpUtf8Port => int.Parse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_NOSMTPUTF8_PORT") ?? "2544", System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task A_group_To_with_only_Bcc_recipients_reaches_aiosmtpd_without_Bcc_and_with_the_envelope_from_Bcc()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var hidden = TestServers.UniqueRecipient("b16-grp-bcc");
        var member = TestServers.UniqueRecipient("b16-grp-member");
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Jürgen Müller", "sender@example.test"));
        message.To.Add(new GroupAddress("undisclosed-recipients", []));
        message.Cc.Add(new GroupAddress("Team", [new MailboxAddress("Zoë", member)]));
        message.Bcc.Add(new MailboxAddress("Hidden", hidden));
        message.Bcc.Add(MailboxAddress.Parse(member));
        message.Subject = "Grüße";
        message.Body = new TextPart("plain") { Text = ".\r\n..\r\n.x\r\nend" };
        var expected = MimeTestMessages.ExpectedData(message);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.AiosmtpdPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test", MaxConnections = 1 });

        var result = await sender.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(member, hidden);
        var stored = await AiosmtpdStore.WaitForAsync(hidden);
        stored.Should().Equal(expected);
        Encoding.UTF8.GetString(stored).Should().NotContain("Bcc").And.NotContain("Hidden").And.Contain("To: undisclosed-recipients: ;");
    }

    [Fact]
    public async Task A_message_without_a_body_is_sent_as_WriteTo_writes_it()
    {
        TestServers.RequireListening(No8BitMimePort);
        var to = TestServers.UniqueRecipient("b16-nobody");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "no body";
        var expected = MimeTestMessages.ExpectedData(message);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, No8BitMimePort);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.ToString());
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(to))[0]).Should().Equal(expected);
    }

    [Fact]
    public async Task A_non_ASCII_Sender_local_part_through_the_pool_to_a_server_without_SMTPUTF8_is_NotSent_and_the_next_message_goes()
    {
        TestServers.RequireListening(NoSmtpUtf8Port);
        var to = TestServers.UniqueRecipient("b16-utf8sender");
        var next = TestServers.UniqueRecipient("b16-utf8sender-next");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.Sender = new MailboxAddress("Jürgen", "jürgen@example.test");
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "utf8 sender";
        message.Body = new TextPart("plain") { Text = "Grüße, 8 bit" };
        var second = new MimeMessage();
        second.From.Add(MailboxAddress.Parse("author@example.test"));
        second.To.Add(MailboxAddress.Parse(next));
        second.Subject = "after";
        second.Body = new TextPart("plain") { Text = "ok" };
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = NoSmtpUtf8Port, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test", MaxConnections = 1 });

        var result = await sender.SendAsync(message);
        var after = await sender.SendAsync(second);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        after.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await Maildir.WaitForPostfixAsync(next);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, to)).Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_8bit_minified_HTML_part_to_strict_newline_Postfix_and_to_a_7bit_server_arrives_with_no_long_line(bool sevenBit)
    {
        var port = sevenBit ? No8BitMimePort : TestServers.PostfixStrictNewlinePort;
        TestServers.RequireListening(port);
        var to = TestServers.UniqueRecipient("b16-minified");
        var html = "<html>" + string.Concat(Enumerable.Repeat("<p>Grüße</p>", 400)) + "</html>";
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "minified";
        var body = new BodyBuilder { HtmlBody = html, TextBody = "Grüße" };
        body.Attachments.Add("empty.bin", Array.Empty<byte>());
        message.Body = body.ToMessageBody();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, port);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.ToString());
        var stored = (await Maildir.WaitForPostfixAsync(to))[0];
        Encoding.ASCII.GetString(stored).Split("\r\n").Max(l => l.Length).Should().BeLessThanOrEqualTo(998);
        if (sevenBit)
        {
            stored.Should().NotContain(b => b >= 0x80);
        }

        var received = MimeMessage.Load(new MemoryStream(stored));
        received.HtmlBody.Should().Be(html);
        received.Attachments.OfType<MimePart>().Single().Content!.Stream!.Length.Should().Be(0);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_message_whose_attachment_fails_mid_data_through_the_pool_is_NotSent_never_delivered_and_the_next_one_goes_whole(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var to = TestServers.UniqueRecipient("b16-pool-fail");
        var next = TestServers.UniqueRecipient("b16-pool-fail-next");
        var failing = new MimeMessage();
        failing.From.Add(MailboxAddress.Parse("sender@example.test"));
        failing.To.Add(MailboxAddress.Parse(to));
        failing.Subject = "fails";
        failing.Body = new Multipart("mixed")
        {
            new TextPart("plain") { Text = "see attachment" },
            new MimePart("application", "octet-stream")
            {
                Content = new MimeContent(new FailAfterStream(new byte[3_000_000], 1_000_000)),
                ContentTransferEncoding = ContentEncoding.Base64,
                FileName = "big.bin",
            },
        };
        var second = new MimeMessage();
        second.From.Add(MailboxAddress.Parse("sender@example.test"));
        second.To.Add(MailboxAddress.Parse(next));
        second.Subject = "after";
        second.Body = new TextPart("plain") { Text = "whole" };
        var expected = MimeTestMessages.ExpectedData(second);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test", MaxConnections = 1,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });

        var results = await sender.SendBatchAsync([failing, second]);

        results[0].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].Exception?.ToString());
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(next))[0]).Should().Equal(expected);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, to)).Should().BeFalse();
    }
}
