using System.Text;
using MailPipe.Tests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.MimeSendScriptedTests;

namespace MailPipe.MimeKit.Tests;

/// <summary>brk-mime2 probes of MailPipe.MimeKit through its public API against the scripted server.</summary>
public class BrkMime2ProbeTests
{
    private const string ALabelMessage = "From: Alice <alice@xn--bcher-kva.example>\r\nTo: \"B\" <b@xn--bcher-kva.example>, c@example.test\r\nBcc: d@XN--BCHER-KVA.example\r\n"
        + "Subject: ascii\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nAll ASCII.\r\n";

    [Fact]
    public void A_parsed_message_whose_domains_were_written_as_A_labels_has_them_in_its_envelope_as_written()
    {
        // MimeKit decodes an A-label domain to Unicode in MailboxAddress.Address: the envelope held b@bücher.example,
        // an address nobody wrote, which needs SMTPUTF8 (RFC 6531).
        var envelope = Parse(ALabelMessage).GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("alice@xn--bcher-kva.example");
        envelope.Recipients.Select(r => r.Address).Should().Equal("b@xn--bcher-kva.example", "c@example.test", "d@XN--BCHER-KVA.example");
    }

    [Fact]
    public void A_parsed_message_whose_domain_was_written_in_Unicode_keeps_it_and_a_resent_block_keeps_its_A_labels()
    {
        var unicode = Parse("From: alice@bücher.example\r\nTo: b@bücher.example, c@xn--bcher-kva.example\r\nSubject: x\r\n\r\nbody\r\n").GetSmtpEnvelope();
        unicode.ReversePath.Should().Be("alice@bücher.example");
        unicode.Recipients.Select(r => r.Address).Should().Equal("b@bücher.example", "c@xn--bcher-kva.example");

        var resent = Parse("Resent-From: fwd@xn--bcher-kva.example\r\nResent-To: r@xn--bcher-kva.example\r\nResent-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            + "Resent-From: old@example.test\r\nResent-To: old@example.test\r\nResent-Date: Sat, 5 Dec 2026 10:00:00 +0000\r\n"
            + "From: a@example.test\r\nTo: t@example.test\r\nSubject: x\r\n\r\nbody\r\n").GetSmtpEnvelope();
        resent.ReversePath.Should().Be("fwd@xn--bcher-kva.example");
        resent.Recipients.Select(r => r.Address).Should().Equal("r@xn--bcher-kva.example");
    }

    [Fact]
    public void A_mailbox_written_once_in_Unicode_and_once_as_its_A_label_is_one_recipient()
    {
        var envelope = Parse("From: a@example.test\r\nTo: b@bücher.example\r\nCc: B@XN--BCHER-KVA.example\r\nBcc: b@xn--bcher-kva.example\r\nSubject: x\r\n\r\nbody\r\n").GetSmtpEnvelope();

        envelope.Recipients.Select(r => r.Address).Should().Equal("b@bücher.example");
    }

    [Fact]
    public void A_local_part_written_once_quoted_and_once_plain_is_one_recipient()
    {
        var envelope = Parse("From: a@example.test\r\nTo: bob@example.test, \"john smith\"@example.test\r\nCc: \"bob\"@example.test, \"john\\ smith\"@example.test\r\nBcc: \"b\\ob\"@example.test, \"bob.x\"@example.test\r\nSubject: x\r\n\r\nbody\r\n").GetSmtpEnvelope();

        envelope.Recipients.Select(r => r.Address).Should().Equal("bob@example.test", "\"john smith\"@example.test", "\"bob.x\"@example.test");
    }

    [Fact]
    public async Task An_ASCII_message_with_A_label_domains_goes_without_SMTPUTF8_and_with_its_A_labels_to_an_SMTPUTF8_server()
    {
        var message = Parse(ALabelMessage);
        var data = new List<byte>();
        var script = Ehlo("PIPELINING", "8BITMIME", "SMTPUTF8")
            .Then(
                "C: MAIL FROM:<alice@xn--bcher-kva.example> BODY=8BITMIME",
                "C: RCPT TO:<b@xn--bcher-kva.example>",
                "C: RCPT TO:<c@example.test>",
                "C: RCPT TO:<d@XN--BCHER-KVA.example>",
                "C: DATA",
                "S: 250 ok",
                "S: 250 ok",
                "S: 250 ok",
                "S: 250 ok",
                "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Exception.Should().BeNull();
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Envelope.SmtpUtf8.Should().BeFalse();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_long_line_re_encodes_only_its_own_part_an_ASCII_attachment_without_an_encoding_goes_as_it_is(bool eightBitMime)
    {
        // README: "only a part with a longer line (minified HTML) is re-encoded". MimeKit's Prepare of the whole message
        // also turned the ASCII attachment without an encoding (RFC 2045: 7bit, sent as it is by the same README) into base64.
        var raw = "From: sender@example.test\r\nTo: bob@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            + "--XX\r\nContent-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>" + new string('a', 2000) + "</p>\r\n"
            + "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=data.csv\r\n\r\nid,name\r\n1,ascii\r\n--XX--\r\n";
        var message = Parse(raw);

        var (result, data) = await SendWithDataAsync(message, eightBitMime);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        Encoding.Latin1.GetString(data.ToArray()).Split("\r\n").Max(l => l.Length).Should().BeLessThanOrEqualTo(998);
        ((MimePart)((Multipart)message.Body!)[0]).ContentTransferEncoding.Should().Be(ContentEncoding.QuotedPrintable, "the part with the long line was re-encoded");
        var attachment = (MimePart)((Multipart)message.Body!)[1];
        attachment.ContentTransferEncoding.Should().Be(ContentEncoding.Default, "the attachment has no long line");
        Encoding.ASCII.GetString(data.ToArray()).Should().Contain("filename=data.csv\r\n\r\nid,name\r\n1,ascii\r\n--XX--", "the attachment went as it was written");
    }

    [Fact]
    public async Task Without_8BITMIME_only_the_parts_that_need_it_are_prepared_an_ASCII_attachment_without_an_encoding_goes_as_it_is()
    {
        // A parsed (say DKIM-signed) all-ASCII message: a text part without an encoding (which may be 8-bit, so the
        // message needs preparing for a 7-bit server) and an ASCII attachment without one (RFC 2045: 7bit; the README:
        // "goes as it is"). MimeKit's Prepare of the whole message turned the attachment into base64.
        var raw = "From: sender@example.test\r\nTo: bob@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            + "--XX\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlain ASCII text.\r\n"
            + "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=data.csv\r\n\r\nid,name\r\n1,ascii\r\n--XX--\r\n";
        var message = Parse(raw);

        var (result, data) = await SendWithDataAsync(message, eightBitMime: false);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        ((MimePart)((Multipart)message.Body!)[1]).ContentTransferEncoding.Should().Be(ContentEncoding.Default);
        Encoding.ASCII.GetString(data.ToArray()).Should().Be(raw, "nothing of this message needed a change for a 7-bit server");
    }

    [Fact]
    public async Task Without_8BITMIME_a_part_declared_7bit_that_holds_8_bit_octets_is_prepared_with_the_rest()
    {
        // MimeKit's Prepare(SevenBit) of the whole message re-encoded a mislabelled 7bit part (UTF-8 text declared 7bit,
        // common in the wild); preparing only the parts that need it must still find it.
        var raw = "From: sender@example.test\r\nTo: bob@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            + "--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\nGrüße, mislabelled.\r\n"
            + "--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße.\r\n--XX--\r\n";
        var message = Parse(raw);

        var (result, data) = await SendWithDataAsync(message, eightBitMime: false);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        data.Should().OnlyContain(b => b < 0x80);
        MimeMessage.Load(new MemoryStream(data.ToArray())).BodyParts.OfType<TextPart>().Select(t => t.Text.TrimEnd()).Should().Equal("Grüße, mislabelled.", "Grüße.");
    }

    /// <summary>Sends <paramref name="message"/> from sender@ to bob@ over DATA to a scripted server (with or without 8BITMIME); the data it read.</summary>
    private static async Task<(SmtpSendResult Result, List<byte> Data)> SendWithDataAsync(MimeMessage message, bool eightBitMime)
    {
        var data = new List<byte>();
        var script = eightBitMime
            ? Ehlo("PIPELINING", "8BITMIME").Then("C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            : Ehlo("PIPELINING").Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<bob@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        ReadData(script, data).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();
        return (result, data);
    }

    internal static MimeMessage Parse(string raw) => MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
}
