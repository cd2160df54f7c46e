using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>
/// Issue #14, acceptance 1 and 4 against the real Postfix (build/servers): the corpus arrives byte for byte as
/// <see cref="MimeMessage.WriteTo(FormatOptions, Stream, CancellationToken)"/> writes it (CRLF, Bcc removed) on 2525
/// (8BITMIME, SMTPUTF8, CHUNKING), and as <c>Prepare(EncodingConstraint.SevenBit)</c> makes it on 2543 (no 8BITMIME);
/// a failing attachment delivers nothing.
/// </summary>
[Trait("Category", "Integration")]
public sealed class MimePostfixTests
{
    private const int NoEightBitMimePort = 2543;

    public MimePostfixTests()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        TestServers.RequireListening(NoEightBitMimePort);
    }

    public static TheoryData<string, bool> Corpus => new()
    {
        { "multipart", false }, { "multipart", true },
        { "8bit", false }, { "8bit", true },
        { "utf8-addresses", false }, { "utf8-addresses", true },
        { "resent", false }, { "resent", true },
    };

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task The_corpus_arrives_as_WriteTo_wrote_it_with_CRLF_and_without_Bcc(string name, bool chunking)
    {
        var (message, deliveredTo, notDeliveredTo) = Make(name);
        var expected = MimeTestMessages.ExpectedData(message);
        await using var session = await ConnectAsync(TestServers.PostfixPort, chunking);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Recipients.Should().OnlyContain(r => r.Reply!.IsPositiveCompletion);
        result.Envelope.Body.Should().Be(SmtpBodyType.EightBitMime, "each corpus message has an 8bit or undeclared text part and the server offers 8BITMIME");
        foreach (var recipient in deliveredTo)
        {
            var stored = await Maildir.WaitForPostfixAsync(recipient);
            Maildir.StripTraceHeaders(stored[0]).Should().Equal(expected, $"{recipient} gets the message as MimeKit wrote it");
        }

        Encoding.UTF8.GetString(expected).Should().NotContainAny("\nBcc:", "\nResent-Bcc:");
        foreach (var recipient in notDeliveredTo)
        {
            Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient)).Should().BeFalse($"{recipient} is in the headers but not in the envelope");
        }
    }

    [Theory]
    [InlineData("multipart")]
    [InlineData("8bit")]
    [InlineData("binary")]
    public async Task Without_8BITMIME_the_message_arrives_as_Prepare_SevenBit_makes_it(string name)
    {
        var (message, deliveredTo, _) = Make(name);
        var reference = Reparse(message);
        reference.Prepare(EncodingConstraint.SevenBit);
        var expected = MimeTestMessages.ExpectedData(reference);
        await using var session = await ConnectAsync(NoEightBitMimePort, chunking: true);
        session.Capabilities.Supports8BitMime.Should().BeFalse();

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Envelope.Body.Should().Be(SmtpBodyType.SevenBit);
        var stored = Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(deliveredTo[0]))[0]);
        Encoding.Latin1.GetString(stored).Should().Be(Encoding.Latin1.GetString(expected));
        stored.Should().OnlyContain(b => b < 0x80, "7-bit data");
    }

    [Fact]
    public async Task Without_SMTPUTF8_a_Unicode_domain_goes_as_an_A_label_and_is_delivered()
    {
        const int NoSmtpUtf8Port = 2544;
        TestServers.RequireListening(NoSmtpUtf8Port);
        var local = $"idn-{Guid.NewGuid():N}";
        var message = MimeTestMessages.EightBitText($"{local}@bücher.example");
        var expected = MimeTestMessages.ExpectedData(message);
        await using var session = await ConnectAsync(NoSmtpUtf8Port, chunking: true);
        session.Capabilities.SupportsSmtpUtf8.Should().BeFalse();

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Envelope.Recipients.Should().ContainSingle().Which.Address.Should().Be($"{local}@xn--bcher-kva.example");
        var stored = await Maildir.WaitForPostfixAsync($"{local}@xn--bcher-kva.example");
        Maildir.StripTraceHeaders(stored[0]).Should().Equal(expected);
    }

    [Fact]
    public async Task Through_the_pooled_sender_each_server_gets_the_body_type_its_connection_offers()
    {
        var (onEightBit, eightBitRecipients, _) = Make("8bit");
        var (onSevenBit, sevenBitRecipients, _) = Make("8bit");
        var reference = Reparse(onSevenBit);
        reference.Prepare(EncodingConstraint.SevenBit);
        var expected8 = MimeTestMessages.ExpectedData(onEightBit);
        var expected7 = MimeTestMessages.ExpectedData(reference);
        await using var eightBit = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test" });
        await using var sevenBit = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = NoEightBitMimePort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test" });

        var results = await Task.WhenAll(eightBit.SendAsync(onEightBit), sevenBit.SendAsync(onSevenBit));

        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[0].Exception?.Message);
        results[0].Envelope.Body.Should().Be(SmtpBodyType.EightBitMime);
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].Exception?.Message);
        results[1].Envelope.Body.Should().Be(SmtpBodyType.SevenBit);
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(eightBitRecipients[0]))[0]).Should().Equal(expected8);
        Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(sevenBitRecipients[0]))[0]).Should().Equal(expected7);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_attachment_that_fails_mid_message_is_NotSent_ContentReadFailed_and_nothing_is_delivered(bool chunking)
    {
        var recipient = TestServers.UniqueRecipient("mimekit-fail");
        var message = MimeTestMessages.MultipartWithAttachments(recipient, TestServers.UniqueRecipient("mimekit-fail-cc"), TestServers.UniqueRecipient("mimekit-fail-bcc"));
        ((Multipart)message.Body!).Add(new MimePart("application", "octet-stream")
        {
            Content = new MimeContent(new FailAfterStream(MimeTestMessages.BinaryBytes(3_000_000), 1_000_000)),
            ContentTransferEncoding = ContentEncoding.Base64,
            FileName = "broken.bin",
        });
        await using var session = await ConnectAsync(TestServers.PostfixPort, chunking);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);

        // A later message to the same recipient is the only one stored: the broken one was never ended.
        await using var again = await ConnectAsync(TestServers.PostfixPort, chunking);
        var probe = new MimeMessage();
        probe.From.Add(MailboxAddress.Parse("sender@example.test"));
        probe.To.Add(MailboxAddress.Parse(recipient));
        probe.Subject = "after the failure";
        probe.Body = new TextPart("plain") { Text = "probe" };
        (await again.SendAsync(probe)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        stored.Should().ContainSingle();
        Encoding.UTF8.GetString(stored[0]).Should().Contain("Subject: after the failure");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_parsed_message_with_odd_bytes_and_a_raw_UTF8_header_arrives_CRLF_normalised(bool chunking)
    {
        // 7bit parts, but a raw UTF-8 Subject (RFC 6532, kept by the parser); dots at line starts, a lone dot line,
        // a bare CR, a bare LF, a 990-octet line and no final line end.
        var to = TestServers.UniqueRecipient("mimekit-odd");
        var raw = $"From: sender@example.test\r\nTo: {to}\r\nSubject: Grüße raw\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n"
            + "Content-Transfer-Encoding: 7bit\r\n\r\n.leading dot\r\n.\r\n..two\r\nbare\rCR\r\nbare\nLF\r\n" + new string('x', 990) + "\r\nno final line end";
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
        var written = Encoding.Latin1.GetString(MimeTestMessages.ExpectedData(message));
        var expected = System.Text.RegularExpressions.Regex.Replace(written, "\r\n|\r|\n", "\r\n");
        expected += expected.EndsWith("\r\n", StringComparison.Ordinal) ? string.Empty : "\r\n";
        await using var session = await ConnectAsync(TestServers.PostfixPort, chunking);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        var stored = Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(to))[0]);
        Encoding.Latin1.GetString(stored).Should().Be(expected);
    }

    [Fact]
    public async Task A_body_with_a_line_over_998_octets_is_accepted_by_aiosmtpd_which_refuses_longer_lines()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var to = TestServers.UniqueRecipient("mimekit-longline");
        var html = "<html><body>" + string.Concat(Enumerable.Repeat("<p>a long minified line of HTML</p>", 200)) + "</body></html>";
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "long line";
        message.Body = new BodyBuilder { HtmlBody = html }.ToMessageBody();
        await using var session = await ConnectAsync(TestServers.AiosmtpdPort, chunking: false);

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.FinalReply?.ToString());
        MimeMessage.Load(new MemoryStream(await AiosmtpdStore.WaitForAsync(to))).HtmlBody.Should().Be(html);
    }

    /// <summary>A corpus message with fresh recipients: the message, who must get it, who must not.</summary>
    private static (MimeMessage Message, string[] DeliveredTo, string[] NotDeliveredTo) Make(string name)
    {
        var to = TestServers.UniqueRecipient($"mimekit-{name}-to");
        switch (name)
        {
            case "multipart":
                var cc = TestServers.UniqueRecipient("mimekit-cc");
                var bcc = TestServers.UniqueRecipient("mimekit-bcc");
                return (MimeTestMessages.MultipartWithAttachments(to, cc, bcc), [to, cc, bcc], []);
            case "8bit":
                return (MimeTestMessages.EightBitText(to), [to], []);
            case "binary":
                return (MimeTestMessages.BinaryAttachment(to), [to], []);
            case "utf8-addresses":
                var message = MimeTestMessages.EightBitText(to);
                message.From.Clear();
                message.From.Add(new MailboxAddress("Zoë Ünïcode", "zoë@bücher.example"));
                var unicodeTo = $"jürgen-{Guid.NewGuid():N}@example.test";
                message.To.Add(new MailboxAddress("Jürgen", unicodeTo));
                return (message, [to, unicodeTo], []);
            default:
                var resentTo = TestServers.UniqueRecipient("mimekit-resent-to");
                var resentBcc = TestServers.UniqueRecipient("mimekit-resent-bcc");
                return (MimeTestMessages.Resent(to, resentTo, resentBcc), [resentTo, resentBcc], [to]);
        }
    }

    /// <summary>An independent copy of the message: its bytes (CRLF, as its parts hold them) parsed again (same boundaries, same Message-Id).</summary>
    private static MimeMessage Reparse(MimeMessage message)
    {
        using var buffer = new MemoryStream();
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        message.WriteTo(format, buffer);
        buffer.Position = 0;
        return MimeMessage.Load(buffer);
    }

    private static async Task<AsyncSmtpSession> ConnectAsync(int port, bool chunking)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, port);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        return session;
    }
}
