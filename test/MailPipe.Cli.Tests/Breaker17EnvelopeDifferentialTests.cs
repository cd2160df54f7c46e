using System.Text;
using MimeKit;

namespace MailPipe.Cli.Tests;

/// <summary>
/// More header sections for both envelope readers (<c>mailpipe send</c> and GetSmtpEnvelope) than
/// <see cref="EnvelopeDifferentialTests"/> has: obsolete syntax, comments, nested quotes in groups, field names in
/// other cases, encoded words holding commas, 8-bit bytes that are not UTF-8, and very long fields.
/// </summary>
public class Breaker17EnvelopeDifferentialTests
{
    private const string Tail = "Subject: x\r\n\r\nbody\r\n";

    public static TheoryData<string, string, string> Cases => new()
    {
        { "obsolete route", "From: <@r1.example.test,@r2.example.test:a@example.test>\r\nTo: <@r.example.test:b@example.test>\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "group with nested quotes", "From: a@example.test\r\nTo: \"grp \\\"x\\\";\": \"a \\\"q\\\", b\" <b@example.test>, c@example.test;\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>" },
        { "field names in other cases, duplicates", "FROM: a@example.test\r\nTO: b@example.test\r\nto: c@example.test\r\ncC: B@EXAMPLE.TEST\r\nbcc: d@example.test\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>, <d@example.test>" },
        { "encoded word with a comma", "From: =?utf-8?q?Doe=2C_J?= <a@example.test>\r\nTo: =?utf-8?q?Smith=2C_B?= <b@example.test>, c@example.test\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>" },
        { "comments around the address", "From: a(x)@(y)example.test\r\nTo: (lead) b@example.test (bob), c @ example.test\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>" },
        { "fold inside the angle brackets", "From: a@example.test\r\nTo: Bob <b@example.test\r\n >, Carol\r\n\t<c@example.test>\r\n",
            "<a@example.test> -> <b@example.test>, <c@example.test>" },
        { "lower-case resent fields", "From: a@example.test\r\nTo: b@example.test\r\nresent-from: r@example.test\r\nRESENT-TO: c@example.test\r\n",
            "<r@example.test> -> <c@example.test>" },
        { "white space before the colon", "From : a@example.test\r\nTo\t: b@example.test\r\n",
            "<a@example.test> -> <b@example.test>" },
        { "A-label domain quoted local part", "From: a@example.test\r\nTo: \"b c\"@xn--bcher-kva.example, \"b c\"@b\u00fccher.example\r\n",
            "<a@example.test> -> <\"b c\"@xn--bcher-kva.example>" },
        { "A-label mailbox named in an earlier display name", "From: a@example.test\r\nTo: \"b@xn--bcher-kva.example\" <c@xn--bcher-kva.example>, b@xn--bcher-kva.example, d@b\u00fccher.example, D@XN--BCHER-KVA.example\r\n",
            "<a@example.test> -> <c@xn--bcher-kva.example>, <b@xn--bcher-kva.example>, <d@XN--BCHER-KVA.example>" }, // one mailbox: the form written last (ASCII) is kept
        { "A-label mailboxes in several fields, one written with a comment", "From: a@example.test\r\nTo: e@xn--bcher-kva.example, f(x)@xn--bcher-kva.example\r\nCc: g@xn--bcher-kva.example, e@b\u00fccher.example\r\n",
            "<a@example.test> -> <e@xn--bcher-kva.example>, <f@b\u00fccher.example>, <g@xn--bcher-kva.example>" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Both_readers_read_the_same_envelope(string name, string headers, string expected)
    {
        var cli = Cli(Encoding.UTF8.GetBytes(headers + Tail));
        var mime = Mime(Encoding.UTF8.GetBytes(headers + Tail));
        cli.Should().Be(expected, $"mailpipe send reads '{name}' so (MimeKit: {mime})");
        mime.Should().Be(expected, $"GetSmtpEnvelope reads '{name}' so (mailpipe send: {cli})");
    }

    [Fact]
    public void Latin1_bytes_in_a_display_name_give_the_same_envelope()
    {
        var bytes = Encoding.Latin1.GetBytes("From: \u00c9mile <a@example.test>\r\nTo: J\u00fcrgen <b@example.test>, \u00c7a <c@example.test>\r\n" + Tail);
        var cli = Cli(bytes);
        cli.Should().Be(Mime(bytes));
        cli.Should().Be("<a@example.test> -> <b@example.test>, <c@example.test>");
    }

    [Fact]
    public void Five_thousand_recipients_in_one_field_of_over_100000_characters_all_go_once()
    {
        var to = string.Join(",\r\n ", Enumerable.Range(0, 5000).Select(i => $"\"R {i}\" <r{i}@xn--bcher-kva.example>"));
        var headers = $"From: a@example.test\r\nTo: {to}\r\nCc: r17@xn--bcher-kva.example\r\n";
        headers.Length.Should().BeGreaterThan(100_000);
        var expected = "<a@example.test> -> " + string.Join(", ", Enumerable.Range(0, 5000).Select(i => $"<r{i}@xn--bcher-kva.example>"));
        Cli(Encoding.UTF8.GetBytes(headers + Tail)).Should().Be(expected);
        Mime(Encoding.UTF8.GetBytes(headers + Tail)).Should().Be(expected);
    }

    private static string Cli(byte[] bytes) => EnvelopeDifferentialTests.Cli(bytes);

    private static string Mime(byte[] bytes) => EnvelopeDifferentialTests.Mime(bytes);
}
