using System.Text;
using MimeKit;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The envelope read from a message's header fields by both readers: <c>mailpipe send</c> for a file and
/// MailPipe.MimeKit's <c>GetSmtpEnvelope</c> for a parsed <see cref="MimeMessage"/>. One table of tricky header
/// sections; both must give the same reverse-path and forward-paths (in the same order), or the same kind of error.
/// </summary>
public class EnvelopeDifferentialTests
{
    private static readonly string[] SenderFields = ["Sender", "From", "Resent-Sender", "Resent-From"];

    private const string Tail = "Subject: x\r\n\r\nbody\r\n";

    /// <summary>
    /// Each case: a name, the header fields (CRLF line ends; the subject and body follow) and the envelope both must give
    /// (<c>&lt;reverse-path&gt; -&gt; &lt;forward-path&gt;, ...</c>) or the kind of error: <c>sender</c> (no reverse-path
    /// can be read), <c>recipients</c> (no forward-path, or a recipient field that cannot be read), <c>address</c> (an
    /// address that SMTP cannot carry).
    /// </summary>
    public static TheoryData<string, string, string> Cases => new()
    {
        { "plain", "From: a@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "display names, folding, comments, encoded words", "From: \"Doe, Jane\" <jane@example.test>\r\nTo: Bob <bob@example.test>,\r\n \"Smith, C\" <carol@example.test>\r\nCc: =?utf-8?q?=C3=89mile?= <emile@example.test>\r\n\t, (c) erin@example.test\r\n",
            "<jane@example.test> -> <bob@example.test>, <carol@example.test>, <emile@example.test>, <erin@example.test>" },
        { "Sender wins over From", "From: a@example.test\r\nSender: s@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "several From mailboxes without Sender", "From: a@example.test, z@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "several From mailboxes with Sender", "From: a@example.test, z@example.test\r\nSender: s@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "Sender without From", "Sender: s@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "empty Sender <>", "Sender: <>\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "empty Sender value", "Sender:\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "unreadable Sender", "Sender: s@\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "Sender group", "Sender: staff: s@example.test;\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "two Sender fields", "Sender: s@example.test\r\nSender: t@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "two From fields", "From: a@example.test\r\nFrom: z@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "From group first", "From: team: lead@example.test, other@example.test;, a@example.test\r\nTo: b@example.test\r\n",
            "<lead@example.test> -> <b@example.test>" },
        { "From empty group only", "From: undisclosed:;\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "From unreadable", "From: Alice <alice@>\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "From unreadable but Sender fine", "From: Alice <alice@>\r\nSender: s@example.test\r\nTo: b@example.test\r\n",
            "<s@example.test> -> <b@example.test>" },
        { "missing From", "To: b@example.test\r\n",
            "error: sender" },
        { "missing recipients", "From: a@example.test\r\n",
            "error: recipients" },
        { "empty group only", "From: a@example.test\r\nTo: undisclosed-recipients:;\r\n",
            "error: recipients" },
        { "groups flattened, duplicates once", "From: a@example.test\r\nTo: Team: x@example.test, Y <y@example.test>;, undisclosed-recipients:;\r\nCc: X@EXAMPLE.TEST\r\n",
            "<a@example.test> -> <x@example.test>, <y@example.test>" },
        { "Cc before To: order", "From: a@example.test\r\nCc: c@example.test\r\nTo: t@example.test\r\nBcc: h@example.test\r\n",
            "<a@example.test> -> <c@example.test>, <t@example.test>, <h@example.test>" },
        { "two To fields", "From: a@example.test\r\nTo: t@example.test\r\nCc: c@example.test\r\nTo: u@example.test\r\n",
            "<a@example.test> -> <t@example.test>, <c@example.test>, <u@example.test>" },
        { "duplicates in spellings", "From: a@example.test\r\nTo: bob@example.test, b@b\u00fccher.example\r\nCc: \"bob\"@example.test, \"b\\ob\"@EXAMPLE.test\r\nBcc: b@xn--bcher-kva.example, \"john smith\"@example.test\r\n",
            "<a@example.test> -> <bob@example.test>, <b@b\u00fccher.example>, <\"john smith\"@example.test>" },
        { "duplicate: quoted first", "From: a@example.test\r\nTo: \"bob\"@example.test\r\nCc: bob@example.test\r\n",
            "<a@example.test> -> <\"bob\"@example.test>" },
        { "duplicate: A-label first", "From: a@example.test\r\nTo: b@xn--bcher-kva.example\r\nCc: b@b\u00fccher.example\r\n",
            "<a@example.test> -> <b@xn--bcher-kva.example>" },
        { "Unicode and A-label domains in one field", "From: a@example.test\r\nTo: x@b\u00fccher.example, y@xn--bcher-kva.example\r\n",
            "<a@example.test> -> <x@b\u00fccher.example>, <y@xn--bcher-kva.example>" },
        { "A-label in capitals", "From: a@XN--BCHER-KVA.EXAMPLE\r\nTo: B@XN--BCHER-KVA.example\r\n",
            "<a@XN--BCHER-KVA.EXAMPLE> -> <B@XN--BCHER-KVA.example>" },
        { "UTF-8 local part and domain", "From: j\u00fcrgen@m\u00fcnchen.example\r\nTo: \u00e9mile@example.test\r\n",
            "<j\u00fcrgen@m\u00fcnchen.example> -> <\u00e9mile@example.test>" },
        { "A-label sender", "From: a@xn--mnchen-3ya.example\r\nTo: b@example.test\r\n",
            "<a@xn--mnchen-3ya.example> -> <b@example.test>" },
        { "Bcc only", "From: a@example.test\r\nBcc: h@example.test\r\n",
            "<a@example.test> -> <h@example.test>" },
        { "empty Bcc", "From: a@example.test\r\nTo: b@example.test\r\nBcc:\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "unreadable To", "From: a@example.test\r\nTo: b@\r\n",
            "error: recipients" },
        { "unreadable To next to a good one", "From: a@example.test\r\nTo: b@, c@example.test\r\n",
            "error: recipients" },
        { "unreadable Cc next to a good To", "From: a@example.test\r\nTo: c@example.test\r\nCc: b@\r\n",
            "error: recipients" },
        { "unreadable Bcc next to a good To", "From: a@example.test\r\nTo: c@example.test\r\nBcc: h@\r\n",
            "error: recipients" },
        { "address without domain", "From: a@example.test\r\nTo: jdoe\r\n",
            "error: address" },
        { "sender without domain", "From: adoe\r\nTo: b@example.test\r\n",
            "error: address" },
        { "quoted local part with space", "From: \"john smith\"@example.test\r\nTo: \"jane doe\"@example.test\r\n",
            "<\"john smith\"@example.test> -> <\"jane doe\"@example.test>" },
        { "address literal", "From: a@[192.0.2.1]\r\nTo: b@[IPv6:2001:db8::1]\r\n",
            "<a@[192.0.2.1]> -> <b@[IPv6:2001:db8::1]>" },
        { "obsolete route", "From: a@example.test\r\nTo: <@relay.example:b@example.test>\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "missing comma", "From: a@example.test\r\nTo: b@example.test c@example.test\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>" },
        { "lower-case names", "from: a@example.test\r\nto: b@example.test\r\nresent-from: r@example.test\r\nRESENT-TO: n@example.test\r\n",
            "<r@example.test> -> <n@example.test>" },
        { "resent: From and To", "Resent-From: r@example.test\r\nResent-To: n@example.test\r\nResent-Bcc: h@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<r@example.test> -> <n@example.test>, <h@example.test>" },
        { "resent: Sender wins", "Resent-Sender: rs@example.test\r\nResent-From: r@example.test\r\nResent-To: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<rs@example.test> -> <n@example.test>" },
        { "resent: Sender without From", "Resent-Sender: rs@example.test\r\nResent-To: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<rs@example.test> -> <n@example.test>" },
        { "resent: To without From", "Resent-To: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "resent: Bcc without From", "Resent-Bcc: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "resent: Cc only and From", "Resent-From: r@example.test\r\nResent-Cc: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<r@example.test> -> <n@example.test>" },
        { "resent: Bcc only and From", "Resent-From: r@example.test\r\nResent-Bcc: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<r@example.test> -> <n@example.test>" },
        { "resent: From only", "Resent-From: r@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: recipients" },
        { "resent: Sender only", "Resent-Sender: rs@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: recipients" },
        { "resent: empty Resent-To", "Resent-To:\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "resent: empty Resent-Bcc with From", "Resent-From: r@example.test\r\nResent-Bcc:\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: recipients" },
        { "resent: unreadable Resent-To", "Resent-To: n@\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: recipients" },
        { "resent: unreadable Resent-To with From", "Resent-From: r@example.test\r\nResent-To: n@\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: recipients" },
        { "resent: unreadable Resent-From", "Resent-From: r@\r\nResent-To: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "error: sender" },
        { "resent: empty Resent-Sender", "Resent-Sender: <>\r\nResent-From: r@example.test\r\nResent-To: n@example.test\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<r@example.test> -> <n@example.test>" },
        { "resent: group From and To", "Resent-From: team: lead@example.test, second@example.test;\r\nResent-To: list: a@example.test, b@example.test;, c@example.test\r\nResent-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\nFrom: author@example.test\r\nTo: old@example.test\r\n",
            "<lead@example.test> -> <a@example.test>, <b@example.test>, <c@example.test>" },
        { "resent: Date only", "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "resent: duplicates across Resent-To and Resent-Cc", "Resent-From: r@example.test\r\nResent-To: n@example.test, \"n\"@example.test\r\nResent-Cc: N@EXAMPLE.TEST, m@b\u00fccher.example\r\nResent-Bcc: m@xn--bcher-kva.example\r\nFrom: a@example.test\r\nTo: b@example.test\r\n",
            "<r@example.test> -> <n@example.test>, <m@b\u00fccher.example>" },
        { "resent twice, Received between", "Resent-From: second@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-From: first@example.test\r\nResent-Sender: first-sender@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nResent-Bcc: old-hidden@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, adjacent", "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-From: second@example.test\r\nResent-Cc: new@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-From: first@example.test\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, newest without recipients", "Resent-From: second@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "error: recipients" },
        { "resent twice, newest without From", "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "error: sender" },
        { "resent twice, Message-ID and Reply-To in the block", "Resent-From: second@example.test\r\nResent-Message-ID: <2@example.test>\r\nResent-Reply-To: rr@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, an unknown Resent-* field in the block", "Resent-From: second@example.test\r\nResent-Comments: again\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, older block has the only Resent-Sender", "Resent-From: second@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-Sender: first-sender@example.test\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, trace fields above the newest block", "Received: from z by w; Mon, 07 Dec 2026 06:00:00 +0000\r\nResent-From: second@example.test\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: new@example.test\r\nReceived: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<second@example.test> -> <new@example.test>" },
        { "resent twice, IDN in the newest block", "Resent-From: r@xn--bcher-kva.example\r\nResent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\nResent-To: n@xn--bcher-kva.example, m@b\u00fccher.example\r\nResent-From: first@example.test\r\nResent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\nResent-To: old@example.test\r\nFrom: author@example.test\r\nTo: original@example.test\r\n",
            "<r@xn--bcher-kva.example> -> <n@xn--bcher-kva.example>, <m@b\u00fccher.example>" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Mailpipe_send_and_GetSmtpEnvelope_read_the_same_envelope(string name, string headers, string expected)
    {
        var cli = Cli(headers);
        var mime = Mime(headers);

        cli.Should().Be(expected, $"mailpipe send reads '{name}' so (MimeKit: {mime})");
        mime.Should().Be(expected, $"GetSmtpEnvelope reads '{name}' so (mailpipe send: {cli})");
    }

    [Fact]
    public void Mailpipe_send_reads_the_fields_as_it_sends_them_also_past_a_line_that_is_no_field()
    {
        // The file's fields go to MimeKit one by one: a bare CR ends a line (it goes as CRLF), and a line that is no
        // field, or a name with a space, must not end the header section there (the Cc after it would be left out).
        var headers = HeaderSection.Parse(Encoding.UTF8.GetBytes(
            "From: a@example.test\r\nnot a field\r\nX Odd: y\r\nTo: b@example.test\rCc: c@example.test\r\n\r\nbody\r\n"));

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.ReversePath.Should().Be("a@example.test");
        envelope.Recipients.Should().Equal("b@example.test", "c@example.test");
    }

    private static string Cli(string headers) => Cli(Encoding.UTF8.GetBytes(headers + Tail));

    private static string Mime(string headers) => Mime(Encoding.UTF8.GetBytes(headers + Tail));

    /// <summary>What <c>mailpipe send</c> reads from a message file's bytes: the envelope, or the kind of error.</summary>
    internal static string Cli(byte[] bytes)
    {
        using var message = OutgoingMessage.FromBytes(1, "m.eml", bytes, new MessageDefaults());
        return message.InputError is not { } error ? Show(message.Envelope!)
            : error.Contains("not a usable envelope", StringComparison.Ordinal) ? "error: address"
            : error.Contains(": no sender:", StringComparison.Ordinal) ? "error: sender"
            : error.Contains(": no recipients:", StringComparison.Ordinal) ? "error: recipients"
            : SenderFields.Any(f => error.Contains($"the {f} header field cannot be parsed", StringComparison.Ordinal)) ? "error: sender"
            : error.Contains("header field cannot be parsed", StringComparison.Ordinal) ? "error: recipients"
            : "error: " + error;
    }

    /// <summary>What GetSmtpEnvelope reads from the same bytes parsed by MimeKit: the envelope, or the kind of error.</summary>
    internal static string Mime(byte[] bytes)
    {
        try
        {
            var message = MimeMessage.Load(new MemoryStream(bytes));
            return Show(message.GetSmtpEnvelope());
        }
        catch (ArgumentException ex)
        {
            // SmtpEnvelope's own check names the path ("'jdoe' is not a forward-path"), MailPipe.MimeKit's the fields.
            return ex.Message.Contains("is not a forward-path", StringComparison.Ordinal) || ex.Message.Contains("is not a reverse-path", StringComparison.Ordinal) ? "error: address"
                : ex.Message.Contains("reverse path", StringComparison.Ordinal) ? "error: sender"
                : "error: recipients";
        }
    }

    private static string Show(SmtpEnvelope envelope) => $"<{envelope.ReversePath}> -> {string.Join(", ", envelope.Recipients.Select(r => $"<{r.Address}>"))}";
}
