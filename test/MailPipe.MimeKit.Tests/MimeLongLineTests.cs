using System.Text;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Issue #14: which messages MimeKit's 998-octet preparation is run for. It reads every part without base64 or
/// quoted-printable through a filter (+25 % CPU for a 64 KiB message), so MailPipe first searches those parts' bytes for
/// a line longer than 998 octets without its CRLF (RFC 5321 §4.5.3.1.6) and prepares only a message that has one.
/// </summary>
public class MimeLongLineTests
{
    [Theory]
    [InlineData(998, "\r\n", false)]
    [InlineData(999, "\r\n", true)]
    [InlineData(998, "\n", false)]
    [InlineData(999, "\n", true)]
    [InlineData(998, "", false)]
    [InlineData(999, "", true)]
    public void A_line_counts_its_octets_without_its_line_end(int length, string end, bool expected)
    {
        var content = "first line\r\n" + new string('x', length) + end + (end.Length > 0 ? "last\r\n" : "");

        MimeBody.MayHaveLongLine(Message(Part(content, ContentEncoding.EightBit)), 998).Should().Be(expected);
    }

    [Theory]
    [InlineData(16 * 1024 - 1)]
    [InlineData(16 * 1024)]
    [InlineData(16 * 1024 + 1)]
    public void A_CRLF_or_a_line_across_the_read_buffers_edge_is_measured_whole(int lineEndAt)
    {
        // Short lines up to lineEndAt, where a 998-octet line ends (its CR and LF on either side of the 16 KiB edge), then one of 999.
        var text = new StringBuilder();
        while (text.Length + 100 < lineEndAt - 998)
        {
            text.Append(new string('a', 98)).Append("\r\n");
        }

        text.Append(new string('b', lineEndAt - 998 - text.Length - 2)).Append("\r\n").Append(new string('c', 998)).Append("\r\n");
        MimeBody.MayHaveLongLine(Message(Part(text.ToString(), ContentEncoding.EightBit)), 998).Should().BeFalse();

        text.Append(new string('d', 999)).Append("\r\n");
        MimeBody.MayHaveLongLine(Message(Part(text.ToString(), ContentEncoding.EightBit)), 998).Should().BeTrue();
    }

    [Fact]
    public void Parts_with_base64_or_quoted_printable_are_not_read_and_a_long_line_in_a_nested_part_is_found()
    {
        var longLine = new string('x', 2000);
        var encoded = Part(longLine, ContentEncoding.Base64);
        var quoted = Part(longLine, ContentEncoding.QuotedPrintable);
        MimeBody.MayHaveLongLine(Message(new Multipart("mixed") { encoded, quoted }), 998).Should().BeFalse();

        var nested = new MessagePart { Message = Message(new Multipart("alternative") { Part("short\r\n", ContentEncoding.SevenBit), Part(longLine, ContentEncoding.Default) }) };
        MimeBody.MayHaveLongLine(Message(new Multipart("mixed") { encoded, nested }), 998).Should().BeTrue();
    }

    [Fact]
    public void Content_stored_encoded_under_an_identity_transfer_encoding_counts_as_possibly_long()
    {
        // The bytes are base64 but go out decoded: they cannot be measured as they are, so MimeKit's preparation decides.
        var part = new MimePart("text", "plain")
        {
            Content = new MimeContent(new MemoryStream(Encoding.ASCII.GetBytes(Convert.ToBase64String(Encoding.ASCII.GetBytes("short\r\n")))), ContentEncoding.Base64),
            ContentTransferEncoding = ContentEncoding.EightBit,
        };

        MimeBody.MayHaveLongLine(Message(part), 998).Should().BeTrue();
    }

    [Fact]
    public void The_search_leaves_the_content_at_its_start()
    {
        var part = Part("Grüße\r\nshort\r\n", ContentEncoding.Default);
        part.Content!.Stream!.Position = 5;

        MimeBody.MayHaveLongLine(Message(part), 998).Should().BeFalse();

        part.Content.Stream.Position.Should().Be(0);
    }

    private static MimePart Part(string text, ContentEncoding transferEncoding) => new("text", "plain")
    {
        Content = new MimeContent(new MemoryStream(Encoding.UTF8.GetBytes(text))),
        ContentTransferEncoding = transferEncoding,
    };

    private static MimeMessage Message(MimeEntity body)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("sender@example.test"));
        message.To.Add(MailboxAddress.Parse("bob@example.test"));
        message.Body = body;
        return message;
    }
}
