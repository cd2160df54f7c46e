using System.Buffers;
using System.Text;
using MailPipe.Protocol;

namespace MailPipe.Tests.Protocol;

/// <summary>The AUTH lines on the wire and in the transcript (RFC 4954 §4), without a session.</summary>
public class SmtpAuthLinesTests
{
    [Fact]
    public void The_AUTH_line_carries_the_initial_response_in_base64_and_the_transcript_hides_it()
    {
        var output = new ArrayBufferWriter<byte>();
        var shown = SmtpAuthLines.WriteCommand(output, "PLAIN", "\0user\0secret"u8.ToArray());

        Encoding.ASCII.GetString(output.WrittenSpan).Should().Be("AUTH PLAIN AHVzZXIAc2VjcmV0\r\n");
        shown.Should().Be("AUTH PLAIN <redacted>").And.NotContain("AHVzZXIAc2VjcmV0");
    }

    [Fact]
    public void No_initial_response_is_the_bare_command_and_an_empty_one_is_an_equals_sign()
    {
        var none = new ArrayBufferWriter<byte>();
        SmtpAuthLines.WriteCommand(none, "LOGIN", initialResponse: null).Should().Be("AUTH LOGIN");
        Encoding.ASCII.GetString(none.WrittenSpan).Should().Be("AUTH LOGIN\r\n");

        var empty = new ArrayBufferWriter<byte>();
        SmtpAuthLines.WriteCommand(empty, "EXTERNAL", ReadOnlyMemory<byte>.Empty).Should().Be("AUTH EXTERNAL <redacted>");
        Encoding.ASCII.GetString(empty.WrittenSpan).Should().Be("AUTH EXTERNAL =\r\n");
    }

    [Fact]
    public void A_continuation_line_is_base64_or_a_star_to_cancel()
    {
        var answer = new ArrayBufferWriter<byte>();
        SmtpAuthLines.WriteResponse(answer, "secret"u8.ToArray()).Should().Be("<redacted>");
        Encoding.ASCII.GetString(answer.WrittenSpan).Should().Be("c2VjcmV0\r\n");

        var cancel = new ArrayBufferWriter<byte>();
        SmtpAuthLines.WriteResponse(cancel, response: null).Should().Be("*");
        Encoding.ASCII.GetString(cancel.WrittenSpan).Should().Be("*\r\n");
    }

    [Fact]
    public void An_initial_response_fits_on_the_line_only_within_12288_octets()
    {
        // "AUTH PLAIN " + base64 + CRLF: 9,204 raw bytes are 12,272 base64 octets, 12,285 in all; 9,208 would be 12,293.
        SmtpAuthLines.FitsOnCommandLine("PLAIN", 9204).Should().BeTrue();
        SmtpAuthLines.FitsOnCommandLine("PLAIN", 9208).Should().BeFalse();
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("XOAUTH2")]
    [InlineData("SCRAM-SHA-256")]
    public void An_initial_response_is_said_to_fit_exactly_when_the_written_AUTH_line_with_its_CRLF_is_within_12288_octets(string mechanism)
    {
        // The boundary: with PLAIN, 9,205 raw bytes are 12,276 base64 octets, and "AUTH PLAIN " + them + CRLF 12,289.
        for (var length = 9150; length < 9230; length++)
        {
            var output = new ArrayBufferWriter<byte>();
            SmtpAuthLines.WriteCommand(output, mechanism, new byte[length]);
            SmtpAuthLines.FitsOnCommandLine(mechanism, length).Should().Be(
                output.WrittenCount <= SmtpAuthLines.MaxCommandLength,
                $"AUTH {mechanism} with {length} raw bytes is a line of {output.WrittenCount} octets");
        }

        SmtpAuthLines.FitsOnCommandLine("PLAIN", 9205).Should().BeFalse();
    }

    [Theory]
    [InlineData("", "")]
    [InlineData("=", "")]
    [InlineData("VXNlcm5hbWU6", "Username:")]
    [InlineData(" VXNlcm5hbWU6 ", "Username:")]
    public void A_challenge_is_decoded_from_base64(string text, string expected)
    {
        SmtpAuthLines.TryDecodeChallenge(new SmtpReply(334, text), out var challenge).Should().BeTrue();
        Encoding.ASCII.GetString(challenge.Span).Should().Be(expected);
    }

    [Fact]
    public void A_challenge_that_is_not_base64_is_refused()
    {
        SmtpAuthLines.TryDecodeChallenge(new SmtpReply(334, "not base64!"), out _).Should().BeFalse();
    }

    [Theory]
    [InlineData("AUTH PLAIN AHVzZXIAc2VjcmV0", false, "AUTH PLAIN <redacted>")]
    [InlineData("auth login", false, "auth login")]
    [InlineData("dXNlcg==", true, "<redacted>")]
    [InlineData("*", true, "*")]
    [InlineData("NOOP", false, null)]
    public void A_raw_line_is_redacted_in_the_transcript(string line, bool inExchange, string? expected)
    {
        SmtpAuthLines.RedactRawLine(line, inExchange).Should().Be(expected);
    }
}
