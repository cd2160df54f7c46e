using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Security;

namespace MailPipe.MimeKit.Tests.Integration;

/// <summary>Breaker23 probes of issue #14: real-world MimeMessages through the real Postfix, Exim and aiosmtpd.</summary>
[Trait("Category", "Integration")]
public sealed class Breaker23ProbeTests
{
    private static readonly AsymmetricCipherKeyPair Keys = CreateKeys();

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_parsed_DKIM_signed_message_with_a_non_text_part_without_an_encoding_arrives_with_a_valid_signature(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var to = TestServers.UniqueRecipient("b23-dkim-noenc");
        // As another program wrote it (LF line ends, as read from a file): an ASCII application/json part without a
        // Content-Transfer-Encoding field, which RFC 2045 §6.1 makes 7bit.
        var raw = $"From: author@example.test\nTo: {to}\nSubject: report\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
            + "--b1\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\nSee the data.\n"
            + "--b1\nContent-Type: application/json\nContent-Disposition: attachment; filename=data.json\n\n{\"a\": 1}\n--b1--\n";
        var signed = Sign(MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw))));
        var message = MimeMessage.Load(new MemoryStream(signed));

        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = chunking });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        var stored = (await Maildir.WaitForPostfixAsync(to))[0];
        (await VerifyAsync(stored)).Should().BeTrue("nothing the signature covers may change on the way");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_header_field_with_a_line_over_998_octets_is_accepted_by_aiosmtpd_which_refuses_longer_lines(bool built)
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var to = TestServers.UniqueRecipient("b23-longheader");
        var subject = string.Join(' ', Enumerable.Repeat("word", 300));
        MimeMessage message;
        if (built)
        {
            message = new MimeMessage();
            message.From.Add(MailboxAddress.Parse("sender@example.test"));
            message.To.Add(MailboxAddress.Parse(to));
            message.Headers.Add("X-Long", subject);
            message.Body = new TextPart("plain") { Text = "Hello." };
        }
        else
        {
            var raw = $"From: sender@example.test\r\nTo: {to}\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nHello.\r\n";
            message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));
        }

        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort);
        await session.EhloAsync("client.example.test");
        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.FinalReply?.ToString());
        var received = MimeMessage.Load(new MemoryStream(await AiosmtpdStore.WaitForAsync(to)));
        (built ? received.Headers["X-Long"] : received.Subject).Should().Be(subject);
    }

    [Fact]
    public async Task A_parsed_part_header_with_a_line_over_998_octets_is_accepted_by_aiosmtpd_which_refuses_longer_lines()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var to = TestServers.UniqueRecipient("b23-longpartheader");
        var name = string.Join(' ', Enumerable.Repeat("part", 300)) + ".txt";
        var raw = $"From: sender@example.test\r\nTo: {to}\r\nSubject: long part header\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            + $"--b1\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\r\nHello.\r\n--b1--\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(raw)));
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.FinalReply?.ToString());
        var received = MimeMessage.Load(new MemoryStream(await AiosmtpdStore.WaitForAsync(to)));
        received.Attachments.Single().ContentDisposition!.FileName.Should().Be(name);
    }

    [Fact]
    public async Task A_UTF8_mailbox_in_a_header_only_goes_with_SMTPUTF8_when_offered()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var to = TestServers.UniqueRecipient("b23-utf8-replyto");
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.ReplyTo.Add(new MailboxAddress("Jürgen", "jürgen@münchen.example"));
        message.Subject = "reply to a UTF-8 mailbox";
        message.Body = new TextPart("plain") { Text = "Hello." };
        var written = MimeTestMessages.ExpectedData(message);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");

        var result = await session.SendAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        var stored = (await Maildir.WaitForPostfixAsync(to))[0];
        written.Should().Contain(b => b >= 0x80, "MimeKit writes the mailbox's local part as UTF-8");
        Encoding.UTF8.GetString(stored).Should().Contain("with UTF8SMTP", "a message with a UTF-8 header field needs SMTPUTF8 (RFC 6531 §3.4)");
        Maildir.StripTraceHeaders(stored).Should().Equal(written);
    }

    [Fact]
    public async Task A_message_parsed_from_a_non_seekable_stream_is_sent_twice_through_the_pooled_sender_whole_each_time()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var to = TestServers.UniqueRecipient("b23-nonseekable");
        var payload = Convert.ToBase64String(MimeTestMessages.BinaryBytes(400_000), Base64FormattingOptions.InsertLineBreaks);
        var raw = $"From: sender@example.test\nTo: {to}\nSubject: piped\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n"
            + $"--b1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße.\n--b1\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n{payload}\n--b1--\n";
        using var pipe = new NonSeekableStream(Encoding.UTF8.GetBytes(raw));
        var message = await MimeMessage.LoadAsync(pipe);
        var expected = MimeTestMessages.ExpectedData(message);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test" });

        var first = await sender.SendAsync(message);
        var second = await sender.SendAsync(message);

        first.Outcome.Should().Be(SmtpSendOutcome.Accepted, first.Exception?.Message);
        second.Outcome.Should().Be(SmtpSendOutcome.Accepted, second.Exception?.Message);
        var stored = await Maildir.WaitForPostfixAsync(to, count: 2);
        stored.Select(Maildir.StripTraceHeaders).Should().AllSatisfy(data => data.Should().Equal(expected));
    }

    private sealed class NonSeekableStream(byte[] bytes) : MemoryStream(bytes, writable: false)
    {
        public override bool CanSeek => false;

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin loc) => throw new NotSupportedException();

        public override long Length => throw new NotSupportedException();
    }

    [Fact]
    public async Task A_resent_DKIM_signed_multipart_message_through_the_pooled_sender_reaches_Exim_as_WriteTo_wrote_it()
    {
        TestServers.RequireListening(TestServers.EximPort);
        var to = TestServers.UniqueRecipient("b23-exim-to");
        var resentBcc = TestServers.UniqueRecipient("b23-exim-rbcc");
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Jürgen Müller", "author@example.test"));
        message.Sender = MailboxAddress.Parse("secretary@example.test");
        message.To.Add(new GroupAddress("team", [MailboxAddress.Parse("old-to@example.test")]));
        message.Bcc.Add(MailboxAddress.Parse("old-bcc@example.test"));
        message.Subject = "Grüße — résumé";
        var builder = new BodyBuilder { TextBody = "Grüße aus München.\n", HtmlBody = "<p>Grüße <img src=\"cid:logo\"></p>" };
        var logo = builder.LinkedResources.Add("logo.png", new byte[] { 0x89, 0x50, 0x4E, 0x47, 0, 1, 2, 0xFF });
        logo.ContentId = "logo";
        builder.Attachments.Add("data.csv", Encoding.UTF8.GetBytes("a,b\r\n1,ü\r\n"), new ContentType("text", "csv"));
        message.Body = builder.ToMessageBody();
        message.Prepare(EncodingConstraint.EightBit, 998);
        var signed = MimeMessage.Load(new MemoryStream(Sign(message)));
        // Resent by a second hop: a Resent block on top, its Bcc hidden and in the envelope.
        signed.Headers.Insert(0, new Header(HeaderId.ResentBcc, resentBcc));
        signed.Headers.Insert(0, new Header(HeaderId.ResentTo, to));
        signed.Headers.Insert(0, new Header(HeaderId.ResentFrom, "forwarder@example.test"));
        signed.Headers.Insert(0, new Header(HeaderId.ResentDate, DateTimeOffset.UtcNow.ToString("r", System.Globalization.CultureInfo.InvariantCulture)));
        var expected = MimeTestMessages.ExpectedData(signed);
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.EximPort, TlsMode = SmtpTlsMode.None, EhloName = "client.example.test" });

        var result = await sender.SendAsync(signed);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        result.Envelope.ReversePath.Should().Be("forwarder@example.test");
        result.Envelope.Recipients.Select(r => r.Address).Should().Equal(to, resentBcc);
        var stored = await Maildir.WaitForEximAsync(to);
        var data = Maildir.StripTraceHeaders(stored);
        Encoding.Latin1.GetString(data).Should().Be(Encoding.Latin1.GetString(expected));
        (await VerifyAsync(data)).Should().BeTrue();
    }

    private static byte[] Sign(MimeMessage message)
    {
        var signer = new DkimSigner(Keys.Private, "example.test", "sel")
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Simple,
        };
        signer.Sign(message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.ContentType]);
        var output = new MemoryStream();
        message.WriteTo(FormatOptions.Default, output);
        return output.ToArray();
    }

    private static async Task<bool> VerifyAsync(byte[] stored)
    {
        var received = await MimeMessage.LoadAsync(new MemoryStream(stored));
        var verifier = new DkimVerifier(new OneKey(Keys.Public));
        return await verifier.VerifyAsync(received, received.Headers[received.Headers.IndexOf(HeaderId.DkimSignature)]);
    }

    private static AsymmetricCipherKeyPair CreateKeys()
    {
        var generator = new RsaKeyPairGenerator();
        generator.Init(new KeyGenerationParameters(new SecureRandom(), 1024));
        return generator.GenerateKeyPair();
    }

    private sealed class OneKey(AsymmetricKeyParameter key) : IDkimPublicKeyLocator
    {
        public AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) => key;

        public Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default) => Task.FromResult(key);
    }
}
