namespace MailPipe.Cli.Tests;

/// <summary>The FILE arguments of <c>mailpipe send</c> tried as a reviewer would (session 12): each test here failed before its fix.</summary>
public class SendInputReviewTests
{
    /// <summary>
    /// An empty FILE argument (<c>mailpipe send "$MESSAGE"</c> with the variable unset) ended the run with
    /// "Unhandled exception: System.ArgumentException: The value cannot be an empty string. (Parameter 'path')" and a
    /// stack trace, and the other files were not sent either. It is now a usage error, said in one line.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_empty_file_argument_is_a_usage_error_in_one_line_not_a_stack_trace(bool afterDoubleDash)
    {
        using var dir = new TempDirectory();
        var file = dir.File("one.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nhello\r\n");
        string[] args = afterDoubleDash ? ["send", "-s", "127.0.0.1:1", file, "--", ""] : ["send", "-s", "127.0.0.1:1", file, ""];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().NotContain("Unhandled").And.NotContain("   at ");
        run.Error.Trim().Split('\n').Should().ContainSingle().Which.Should().Be("mailpipe send: a FILE argument is empty (''): give a file, a directory, a wildcard, or - for standard input");
        run.Output.Should().BeEmpty("nothing was read or connected");
    }
}
