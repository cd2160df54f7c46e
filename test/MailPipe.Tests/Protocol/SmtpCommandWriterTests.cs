using System.Buffers;
using System.Text;

namespace MailPipe.Tests.Protocol;

public class SmtpCommandWriterTests
{
    /// <summary>Each forbidden character at the start, in the middle and at the end of an otherwise valid value.</summary>
    public static TheoryData<string> Injections()
    {
        var data = new TheoryData<string>();
        foreach (var bad in new[] { "\r", "\n", "\0", "\r\n" })
        {
            data.Add(bad + "user@example.test");
            data.Add("user@example.test" + bad + "RCPT TO:<victim@example.test>");
            data.Add("user@example.test" + bad);
        }

        return data;
    }

    private static string Written(ArrayBufferWriter<byte> output) => Encoding.UTF8.GetString(output.WrittenSpan);

    [Fact]
    public void Verb_alone()
    {
        var output = new ArrayBufferWriter<byte>();

        SmtpCommandWriter.Write(output, "NOOP"u8);

        Written(output).Should().Be("NOOP\r\n");
    }

    [Fact]
    public void Verb_and_argument()
    {
        var output = new ArrayBufferWriter<byte>();

        SmtpCommandWriter.Write(output, "EHLO"u8, "client.example.test");

        Written(output).Should().Be("EHLO client.example.test\r\n");
    }

    [Theory]
    [InlineData("user@example.test", null, "MAIL FROM:<user@example.test>\r\n")]
    [InlineData("<user@example.test>", null, "MAIL FROM:<user@example.test>\r\n")]
    [InlineData("  <user@example.test> ", "", "MAIL FROM:<user@example.test>\r\n")]
    [InlineData("user@example.test", "SIZE=1024 BODY=8BITMIME", "MAIL FROM:<user@example.test> SIZE=1024 BODY=8BITMIME\r\n")]
    [InlineData("user@example.test", "  SIZE=1 ", "MAIL FROM:<user@example.test> SIZE=1\r\n")]
    [InlineData("user@example.test", "   ", "MAIL FROM:<user@example.test>\r\n")]
    [InlineData("", null, "MAIL FROM:<>\r\n")]
    [InlineData("<>", "BODY=7BIT", "MAIL FROM:<> BODY=7BIT\r\n")]
    [InlineData("üser@exämple.test", "SMTPUTF8", "MAIL FROM:<üser@exämple.test> SMTPUTF8\r\n")]
    public void Path_command(string path, string? parameters, string expected)
    {
        var output = new ArrayBufferWriter<byte>();

        SmtpCommandWriter.WritePathCommand(output, "MAIL FROM:"u8, path, parameters);

        Written(output).Should().Be(expected);
    }

    [Fact]
    public void Caller_line()
    {
        var output = new ArrayBufferWriter<byte>();

        SmtpCommandWriter.WriteLine(output, "XFOO bar");

        Written(output).Should().Be("XFOO bar\r\n");
    }

    [Theory]
    [InlineData("XFOO\r\n", "XFOO")]
    [InlineData("XFOO", "XFOO")]
    [InlineData("XFOO\r\n\r\n", "XFOO\r\n")]
    [InlineData("XFOO\n", "XFOO\n")]
    public void TrimLineEnd_drops_one_trailing_CRLF(string line, string expected)
    {
        SmtpCommandWriter.TrimLineEnd(line).Should().Be(expected);
    }

    [Theory]
    [InlineData("<a@b>", "a@b")]
    [InlineData("a@b", "a@b")]
    [InlineData(" <a@b> ", "a@b")]
    [InlineData("<>", "")]
    [InlineData("<", "<")]
    [InlineData("", "")]
    public void StripBrackets(string path, string expected)
    {
        SmtpCommandWriter.StripBrackets(path).ToString().Should().Be(expected);
    }

    [Theory]
    [MemberData(nameof(Injections))]
    public void ValidateArgument_rejects_CR_LF_and_NUL(string value)
    {
        var act = () => SmtpCommandWriter.ValidateArgument(value, "value");

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("value");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("user@example.test")]
    [InlineData("SIZE=10 BODY=8BITMIME")]
    public void ValidateArgument_accepts_ordinary_values(string? value)
    {
        var act = () => SmtpCommandWriter.ValidateArgument(value, "value");

        act.Should().NotThrow();
    }

    [Theory]
    [InlineData("<a<b@example.test>")]
    [InlineData("a>b@example.test")]
    [InlineData("<<a@example.test>>")]
    public void ValidatePath_rejects_brackets_inside_the_mailbox(string path)
    {
        var act = () => SmtpCommandWriter.ValidatePath(path, "path");

        act.Should().Throw<ArgumentException>().Which.ParamName.Should().Be("path");
    }

    [Theory]
    [MemberData(nameof(Injections))]
    public void Argument_with_CR_LF_or_NUL_writes_not_one_byte(string value)
    {
        var output = new ArrayBufferWriter<byte>();

        var act = () => SmtpCommandWriter.Write(output, "VRFY"u8, value);

        act.Should().Throw<ArgumentException>();
        output.WrittenCount.Should().Be(0);
    }

    [Theory]
    [MemberData(nameof(Injections))]
    public void Path_with_CR_LF_or_NUL_writes_not_one_byte(string value)
    {
        var output = new ArrayBufferWriter<byte>();

        var act = () => SmtpCommandWriter.WritePathCommand(output, "RCPT TO:"u8, value, null);

        act.Should().Throw<ArgumentException>();
        output.WrittenCount.Should().Be(0);
    }

    [Theory]
    [MemberData(nameof(Injections))]
    public void Parameters_with_CR_LF_or_NUL_write_not_one_byte(string value)
    {
        var output = new ArrayBufferWriter<byte>();

        var act = () => SmtpCommandWriter.WritePathCommand(output, "MAIL FROM:"u8, "a@example.test", "SIZE=10 " + value);

        act.Should().Throw<ArgumentException>();
        output.WrittenCount.Should().Be(0);
    }

    [Fact]
    public void Path_with_brackets_inside_writes_not_one_byte()
    {
        var output = new ArrayBufferWriter<byte>();

        var act = () => SmtpCommandWriter.WritePathCommand(output, "MAIL FROM:"u8, "<a>b@example.test>", null);

        act.Should().Throw<ArgumentException>();
        output.WrittenCount.Should().Be(0);
    }

    [Theory]
    [MemberData(nameof(Injections))]
    public void Caller_line_with_CR_LF_or_NUL_writes_not_one_byte(string value)
    {
        var output = new ArrayBufferWriter<byte>();

        var act = () => SmtpCommandWriter.WriteLine(output, "XFOO " + value);

        act.Should().Throw<ArgumentException>();
        output.WrittenCount.Should().Be(0);
    }
}
