namespace MailPipe.Cli.Tests;

public class ExitCodesTests
{
    [Theory]
    [InlineData(SmtpErrorCode.ConnectionRefused, 2)]
    [InlineData(SmtpErrorCode.HostNotFound, 2)]
    [InlineData(SmtpErrorCode.SystemError, 2)]
    [InlineData(SmtpErrorCode.ConnectionClosed, 2)]
    [InlineData(SmtpErrorCode.TlsHandshakeFailed, 2)]
    [InlineData(SmtpErrorCode.BadCertificate, 2)]
    [InlineData(SmtpErrorCode.BadCertificateName, 2)]
    [InlineData(SmtpErrorCode.StartTlsNotOffered, 2)]
    [InlineData(SmtpErrorCode.StartTlsResponseInjection, 2)]
    [InlineData(SmtpErrorCode.AuthenticationError, 3)]
    [InlineData(SmtpErrorCode.ProtocolError, 8)]
    [InlineData(SmtpErrorCode.ReplyTooLong, 8)]
    [InlineData(SmtpErrorCode.TimedOut, 8)]
    [InlineData(SmtpErrorCode.ContentReadFailed, 1)] // a message file that could not be read when it was sent: an input error
    public void Errors_outside_the_data_map_to_their_code(SmtpErrorCode error, int expected) =>
        ExitCodes.ForError(error).Should().Be(expected);

    [Fact]
    public void Every_error_code_maps_to_a_failure() =>
        Enum.GetValues<SmtpErrorCode>().Select(ExitCodes.ForError).Should().OnlyContain(code => code >= 1 && code <= 8);

    [Fact]
    public void A_batch_takes_the_highest_code()
    {
        ExitCodes.Combine([]).Should().Be(0);
        ExitCodes.Combine([0, 0]).Should().Be(0);
        ExitCodes.Combine([0, 5, 4]).Should().Be(5);
        ExitCodes.Combine([1, 7, 0]).Should().Be(7);
    }

    [Fact]
    public void An_unknown_outcome_outranks_a_timeout_so_a_retry_on_8_never_sends_it_again()
    {
        ExitCodes.Combine([7, 8]).Should().Be(7, "message 1 may have been delivered (breaker21)");
        ExitCodes.Combine([8, 0, 7]).Should().Be(7);
        ExitCodes.Combine([8, 2]).Should().Be(8);
    }
}

public sealed class TerminalTextTests
{
    [Fact]
    public void Escape_sequences_from_a_server_never_reach_the_terminal()
    {
        var hostile = "550 no such user\u001b]0;pwned\u0007\u001b[2J\r\u009b31m";
        var shown = MailPipe.Cli.TerminalText.Sanitize(hostile);
        shown.Should().NotContain("\u001b").And.NotContain("\u0007").And.NotContain("\r").And.NotContain("\u009b");
        shown.Should().StartWith("550 no such user?]0;pwned??[2J??31m");
    }

    [Fact]
    public void Bidirectional_controls_that_would_reorder_the_text_shown_are_replaced()
    {
        // U+202E shows "evil@example.test" + RLO + "txt.exe" as if it ended in "exe.txt"; isolates and marks likewise.
        var shown = MailPipe.Cli.TerminalText.Sanitize("250 <evil\u202Etxt.exe@example.test> \u2066a\u2069 \u200Fb \u061Cc");
        shown.Should().Be("250 <evil?txt.exe@example.test> ?a? ?b ?c");
    }

    [Fact]
    public void Right_to_left_text_itself_is_kept()
    {
        MailPipe.Cli.TerminalText.Sanitize("250 שלום مرحبا").Should().Be("250 שלום مرحبا");
    }

    [Fact]
    public void Ordinary_text_and_line_breaks_are_kept()
    {
        MailPipe.Cli.TerminalText.Sanitize("250-first\n250 café\tok").Should().Be("250-first\n250 café\tok");
    }
}
