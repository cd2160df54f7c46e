using System.Text;
using MimeKit;

namespace MailPipe.Cli.Tests;

public class MessageBuilderTests
{
    private static readonly DateTimeOffset Date = new(2026, 1, 2, 3, 4, 5, TimeSpan.FromHours(1));

    private static MessageBuilder Builder(string? subject, string? body, string from = "Alice <a@example.test>") =>
        new(MailboxAddress.Parse(from), [MailboxAddress.Parse("b@example.test"), MailboxAddress.Parse("\"Carol C.\" <c@example.test>")], subject, body, Date);

    [Fact]
    public void Ascii_message_has_every_header_and_CRLF_line_ends()
    {
        var builder = Builder("hi", "hello\nsecond line");
        var bytes = builder.Render(builder.ChooseEncoding(server8BitMime: true));
        var text = Encoding.ASCII.GetString(bytes);

        text.Should().Contain("From: Alice <a@example.test>\r\n");
        text.Should().Contain("To: b@example.test, \"Carol C.\" <c@example.test>\r\n");
        text.Should().Contain("Subject: hi\r\n");
        text.Should().Contain("Date: Fri, 02 Jan 2026 03:04:05 +0100\r\n");
        text.Should().Contain($"Message-Id: <{builder.MessageId}>\r\n");
        builder.MessageId.Should().EndWith("@example.test");
        text.Should().Contain("MIME-Version: 1.0\r\n");
        text.Should().Contain("Content-Type: text/plain; charset=utf-8\r\n");
        text.Should().Contain("Content-Transfer-Encoding: 7bit\r\n");
        text.Should().EndWith("\r\n\r\nhello\r\nsecond line\r\n");
        text.Replace("\r\n", string.Empty).Should().NotContain("\n");

        using var parsed = MimeMessage.Load(new MemoryStream(bytes));
        parsed.Subject.Should().Be("hi");
        parsed.TextBody!.ReplaceLineEndings("\n").Should().Be("hello\nsecond line\n");
    }

    [Fact]
    public void Non_ascii_body_is_8bit_when_the_server_takes_it_and_quoted_printable_otherwise()
    {
        var builder = Builder("Grüße", "Grüße aus Köln");

        builder.ChooseEncoding(server8BitMime: true).Should().Be(ContentEncoding.EightBit);
        builder.ChooseEncoding(server8BitMime: false).Should().Be(ContentEncoding.QuotedPrintable);

        var eightBit = builder.Render(ContentEncoding.EightBit);
        Encoding.UTF8.GetString(eightBit).Should().Contain("Content-Transfer-Encoding: 8bit\r\n").And.EndWith("\r\n\r\nGrüße aus Köln\r\n");

        var quoted = builder.Render(ContentEncoding.QuotedPrintable);
        quoted.Should().OnlyContain(b => b < 0x80, "a quoted-printable message is pure ASCII, subject included (RFC 2047)");
        var text = Encoding.ASCII.GetString(quoted);
        text.Should().Contain("Content-Transfer-Encoding: quoted-printable\r\n").And.Contain("Gr=C3=BC=C3=9Fe aus K=C3=B6ln");
        text.Should().Contain("Subject: =?utf-8?");

        using var parsed = MimeMessage.Load(new MemoryStream(quoted));
        parsed.Subject.Should().Be("Grüße");
        parsed.TextBody!.ReplaceLineEndings("\n").Should().Be("Grüße aus Köln\n");
    }

    [Fact]
    public void Lines_longer_than_998_octets_go_quoted_printable()
    {
        var builder = Builder("long", new string('a', 1200));

        builder.ChooseEncoding(server8BitMime: true).Should().Be(ContentEncoding.QuotedPrintable);
        Encoding.ASCII.GetString(builder.Render(ContentEncoding.QuotedPrintable)).Split("\r\n").Should().OnlyContain(l => l.Length <= 78);
    }

    [Fact]
    public void Missing_subject_and_body_make_an_empty_message()
    {
        var builder = Builder(subject: null, body: null);
        var bytes = builder.Render(builder.ChooseEncoding(false));

        Encoding.ASCII.GetString(bytes).Should().Contain("Subject:\r\n").And.Contain("Content-Transfer-Encoding: 7bit\r\n\r\n");
        using var parsed = MimeMessage.Load(new MemoryStream(bytes));
        parsed.Subject.Should().BeEmpty();
        parsed.TextBody.Should().BeNullOrWhiteSpace();
    }
}
