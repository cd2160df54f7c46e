using System.Text;
using MailPipe.IntegrationTests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.Peer.PeerMimeServers;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.MimeKit's "What is sent", against the four real servers (Postfix, Exim, aiosmtpd,
/// smtp-sink: all offer 8BITMIME, none BINARYMIME; smtp-sink has no SMTPUTF8), on a session of its own and through the
/// pooled sender: the data is what <c>MimeMessage.WriteTo</c> writes with CRLF and without Bcc, every envelope
/// recipient gets it, the body type is declared, and the MimeMessage's parts are prepared only where the docs say.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerMimeDeliveryTests
{
    public static TheoryData<string, string> AllServers()
    {
        var data = new TheoryData<string, string>();
        foreach (var server in new[] { Postfix, Exim, Aiosmtpd, Sink })
        {
            data.Add(server, Session);
            data.Add(server, Pool);
        }

        return data;
    }

    public static TheoryData<string, string> Utf8Servers()
    {
        var data = new TheoryData<string, string>();
        foreach (var server in new[] { Postfix, Exim, Aiosmtpd })
        {
            data.Add(server, Session);
            data.Add(server, Pool);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(AllServers))]
    public async Task A_multipart_message_with_To_Cc_and_Bcc_reaches_each_recipient_as_WriteTo_wrote_it_without_the_Bcc_field(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-mp-to");
        var cc = TestServers.UniqueRecipient("peer-mp-cc");
        var bcc = TestServers.UniqueRecipient("peer-mp-bcc");
        var message = MimeTestMessages.MultipartWithAttachments(to, cc, bcc);
        var expected = MimeTestMessages.ExpectedData(message);
        var envelope = message.GetSmtpEnvelope();

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(to, cc, bcc);
        result.Recipients.Should().OnlyContain(r => r.Accepted);
        result.Envelope.ReversePath.Should().Be("sender@example.test").And.Be(envelope.ReversePath);
        result.Envelope.Body.Should().Be(SmtpBodyType.EightBitMime, "every message goes with BODY=8BITMIME to a server that offers it");
        foreach (var recipient in server is Postfix or Exim ? new[] { to, cc, bcc } : [to])
        {
            var stored = await StoredAsync(server, recipient);
            stored.Should().Equal(expected, $"{recipient} gets the message as MimeKit wrote it");
            var text = Encoding.Latin1.GetString(stored);
            text.Should().NotContain("\r\nBcc:").And.NotContain("Hidden").And.NotContain(bcc, "the Bcc field is never on the wire");
            text.Should().Contain($"Message-Id: <{message.MessageId}>");
        }

        if (await MailParametersAsync(server, to) is { } parameters)
        {
            parameters.Should().Contain("BODY=8BITMIME", "the body type is declared explicitly in MAIL");
            parameters.Should().NotContain("SMTPUTF8", "an all-ASCII message needs no SMTPUTF8");
        }

        if (server == Sink)
        {
            (await SinkAsync(to)).RcptArgs.Should().Equal($"<{to}>", $"<{cc}>", $"<{bcc}>");
        }
    }

    [Theory]
    [MemberData(nameof(AllServers))]
    public async Task A_parsed_message_with_a_raw_UTF8_Subject_goes_with_SMTPUTF8_where_offered_else_with_8BITMIME_alone_and_arrives_byte_for_byte(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-raw8");
        var raw = $"From: sender@example.test\r\nTo: {to}\r\nSubject: Grüße roh, Ωmega\r\nMessage-Id: <{Guid.NewGuid():N}@example.test>\r\nMIME-Version: 1.0\r\n"
            + "Content-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\nplain 7-bit body\r\n";
        var message = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.Body.Should().Be(SmtpBodyType.EightBitMime);
        result.Envelope.SmtpUtf8.Should().Be(server != Sink, "a message whose sent fields hold 8-bit octets goes with SMTPUTF8 when the server offers it (RFC 6531 §3.4)");
        (await StoredAsync(server, to)).Should().Equal(Encoding.UTF8.GetBytes(raw));
        if (await MailParametersAsync(server, to) is { } parameters)
        {
            parameters.Should().Contain("BODY=8BITMIME");
            parameters.Contains("SMTPUTF8", StringComparison.Ordinal).Should().Be(server != Sink);
        }
    }

    [Theory]
    [MemberData(nameof(Utf8Servers))]
    public async Task A_UTF8_local_part_goes_with_SMTPUTF8_and_is_delivered_to_that_mailbox(string server, string via)
    {
        var unicode = $"jürgen-{Guid.NewGuid():N}@bücher.example";
        var ascii = TestServers.UniqueRecipient("peer-utf8");
        var message = MimeTestMessages.EightBitText(ascii);
        message.Cc.Add(new MailboxAddress("Jürgen Ä", unicode));

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.SmtpUtf8.Should().BeTrue();
        result.Recipients.Should().OnlyContain(r => r.Accepted);
        result.Recipients.Select(r => r.Recipient.Address).Should().Contain(unicode, "an SMTPUTF8 server gets the address as written");
        var expected = MimeTestMessages.ExpectedData(message);
        (await StoredAsync(server, ascii)).Should().Equal(expected);
        if (server != Aiosmtpd)
        {
            (await StoredAsync(server, unicode)).Should().Equal(expected, "the UTF-8 mailbox gets its copy");
        }

        if (await MailParametersAsync(server, ascii) is { } parameters)
        {
            parameters.Should().Contain("SMTPUTF8").And.Contain("BODY=8BITMIME");
        }
    }

    [Theory]
    [InlineData(Session)]
    [InlineData(Pool)]
    public async Task Without_SMTPUTF8_a_Unicode_domain_reaches_smtp_sink_as_its_A_label(string via)
    {
        var local = $"peer-idn-{Guid.NewGuid():N}";
        var message = MimeTestMessages.EightBitText($"{local}@bücher.example");

        var result = await SendAsync(Sink, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.SmtpUtf8.Should().BeFalse();
        var dump = await SinkAsync($"{local}@xn--bcher-kva.example");
        dump.RcptArgs.Should().Equal($"<{local}@xn--bcher-kva.example>");
        dump.MailArgs.Should().NotContain("SMTPUTF8");
        dump.Message.Should().Equal(MimeTestMessages.ExpectedData(message), "the header keeps the domain as MimeKit wrote it");
    }

    [Theory]
    [MemberData(nameof(AllServers))]
    public async Task A_resent_message_goes_from_Resent_From_to_Resent_To_and_Resent_Bcc_only_without_the_Resent_Bcc_field(string server, string via)
    {
        var originalTo = TestServers.UniqueRecipient("peer-orig");
        var resentTo = TestServers.UniqueRecipient("peer-rto");
        var resentBcc = TestServers.UniqueRecipient("peer-rbcc");
        var message = MimeTestMessages.Resent(originalTo, resentTo, resentBcc);
        var expected = MimeTestMessages.ExpectedData(message);

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.ReversePath.Should().Be("forwarder@example.test");
        result.Recipients.Select(r => r.Recipient.Address).Should().Equal(resentTo, resentBcc);
        var stored = await StoredAsync(server, resentTo);
        stored.Should().Equal(expected);
        var text = Encoding.Latin1.GetString(stored);
        text.Should().Contain("Resent-To:").And.Contain("Resent-From:").And.NotContain("Resent-Bcc:").And.NotContain(resentBcc);
        text.Should().Contain("To: " + originalTo, "the original fields stay as they were");
        if (server == Postfix)
        {
            (await StoredAsync(server, resentBcc)).Should().Equal(expected);
            Directory.Exists(Path.Combine(TestServers.PostfixMaildir, originalTo)).Should().BeFalse("the original recipient does not get it again");
        }
    }

    [Theory]
    [MemberData(nameof(AllServers))]
    public async Task A_binary_part_to_a_server_without_BINARYMIME_is_prepared_for_8BITMIME_and_its_bytes_arrive_intact(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-bin");
        var message = MimeTestMessages.BinaryAttachment(to);
        var part = message.BodyParts.OfType<MimePart>().Single(p => p.FileName == "raw.bin");

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.Body.Should().Be(SmtpBodyType.EightBitMime, "none of the servers offers BINARYMIME");
        part.ContentTransferEncoding.Should().NotBe(ContentEncoding.Binary, "the docs: this modifies the MimeMessage you passed");
        var stored = await StoredAsync(server, to);
        LongestLine(stored).Should().BeLessThanOrEqualTo(998);
        stored.Should().Equal(MimeTestMessages.ExpectedData(message), "the message as its prepared parts write it");
        using var decoded = new MemoryStream();
        Reparse(stored).BodyParts.OfType<MimePart>().Single(p => p.FileName == "raw.bin").Content!.DecodeTo(decoded);
        decoded.ToArray().Should().Equal(MimeTestMessages.BinaryBytes(50_000));
    }

    [Theory]
    [MemberData(nameof(AllServers))]
    public async Task An_8bit_text_part_with_a_5000_octet_line_arrives_with_no_line_over_998_octets_and_the_same_text(string server, string via)
    {
        var to = TestServers.UniqueRecipient("peer-long");
        var message = MimeTestMessages.EightBitText(to);
        var text = "Kurz.\r\n" + string.Concat(Enumerable.Repeat("Überlänge ", 500)) + "\r\nEnde.\r\n";
        ((TextPart)message.Body!).SetText("utf-8", text);

        var result = await SendAsync(server, via, message);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        var stored = await StoredAsync(server, to);
        LongestLine(stored).Should().BeLessThanOrEqualTo(998, "RFC 5321 §4.5.3.1.6; aiosmtpd refuses longer lines");
        Reparse(stored).TextBody!.ReplaceLineEndings("\n").Should().Be(text.ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData(Postfix, Session)]
    [InlineData(Exim, Pool)]
    [InlineData(Aiosmtpd, Session)]
    public async Task An_envelope_of_ones_own_decides_the_recipients_and_the_headers_go_untouched(string server, string via)
    {
        var headerTo = TestServers.UniqueRecipient("peer-hdr");
        var actual = TestServers.UniqueRecipient("peer-env");
        var message = MimeTestMessages.EightBitText(headerTo);
        var expected = MimeTestMessages.ExpectedData(message);
        var smtpMessage = message.ToSmtpMessage(new SmtpEnvelope("bounces@example.test", actual));
        TestServers.RequireListening(Port(server));

        SmtpSendResult result;
        if (via == Session)
        {
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, Port(server), SmtpTlsMode.None, "client.peer.test");
            result = await session.SendAsync(smtpMessage);
        }
        else
        {
            await using var sender = NewSender(Port(server));
            result = await sender.SendAsync(smtpMessage);
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Envelope.ReversePath.Should().Be("bounces@example.test");
        result.Recipients.Should().ContainSingle().Which.Recipient.Address.Should().Be(actual);
        (await StoredAsync(server, actual)).Should().Equal(expected);
        if (server == Postfix)
        {
            Directory.Exists(Path.Combine(TestServers.PostfixMaildir, headerTo)).Should().BeFalse();
        }
    }

    [Theory]
    [InlineData(Postfix)]
    [InlineData(Aiosmtpd)]
    public async Task The_same_SmtpMessage_sent_twice_on_one_session_arrives_whole_twice(string server)
    {
        var to = TestServers.UniqueRecipient("peer-twice");
        var message = MimeTestMessages.MultipartWithAttachments(to, TestServers.UniqueRecipient("peer-twice-cc"), TestServers.UniqueRecipient("peer-twice-bcc"));
        var expected = MimeTestMessages.ExpectedData(message);
        var smtpMessage = message.ToSmtpMessage();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, Port(server), SmtpTlsMode.None, "client.peer.test");

        (await session.SendAsync(smtpMessage)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await session.SendAsync(smtpMessage)).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        if (server == Postfix)
        {
            var stored = await Maildir.WaitForPostfixAsync(to, 2);
            stored.Should().HaveCount(2);
            stored.Should().AllSatisfy(s => Maildir.StripTraceHeaders(s).Should().Equal(expected));
        }
        else
        {
            (await StoredAsync(server, to)).Should().Equal(expected);
            Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json").Count(f => File.ReadAllText(f).Contains(to, StringComparison.Ordinal)).Should().Be(2);
        }
    }
}
