namespace MailPipe.Cli.Tests;

/// <summary>The <c>error:</c> line of a result in the text output.</summary>
public class ErrorLineTests
{
    /// <summary>
    /// A server's multi-line reply inside an error showed its line break as '?' ("…not allowed?501 Too many…", found by
    /// the peer suite of session 19), where reply lines read " / " everywhere else; now " / ", and still one line.
    /// </summary>
    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void A_multi_line_reply_in_an_error_reads_as_one_line_with_slashes(string lineBreak)
    {
        var result = new MessageResult
        {
            Index = 1,
            File = "a.eml",
            Outcome = MessageOutcome.NotSent,
            ExitCode = ExitCodes.ConnectionFailed,
            Error = $"not sent: the server refused the session: 501-5.5.2 Syntax error, command not allowed{lineBreak}501 5.5.2 Too many errors",
        };

        var lines = ResultPrinter.ToText(result).Split('\n', StringSplitOptions.RemoveEmptyEntries);

        lines.Should().ContainSingle(l => l.StartsWith("  error: ", StringComparison.Ordinal))
            .Which.Should().Be("  error: not sent: the server refused the session: 501-5.5.2 Syntax error, command not allowed / 501 5.5.2 Too many errors");
    }
}
