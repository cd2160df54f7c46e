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

    /// <summary>
    /// A message saved from an mbox file starts with its "From sender date" separator line. That line is not a header
    /// field, so it was sent as the message's first line: Postfix took the whole header section for the body (the
    /// recipient got no From, To or Subject, and those lines as text). As a byte order mark is, it is an input error
    /// that says what to remove, and nothing is sent; an obsolete-syntax "From :" field is still a field.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_file_that_starts_with_an_mbox_From_line_is_refused_saying_so(bool envelopeGiven)
    {
        using var dir = new TempDirectory();
        using var input = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        var mbox = input.File("mbox.eml", "From a@example.test Mon Dec  7 10:00:00 2026\r\nFrom: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\nhi\r\n");
        var obsolete = input.File("obsolete.eml", "From : a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\r\nhi\r\n");
        string[] envelope = envelopeGiven ? ["--from", "a@example.test", "--to", "b@example.test"] : [];

        var run = await CliRunner.RunAsync(["send", "--server", serve.Address, .. envelope, mbox, obsolete]);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Output.Should().Contain($"{mbox}: starts with an mbox \"From \" line");
        run.Output.Should().Contain($"{obsolete}: accepted");
        Directory.GetFiles(dir.Path).Select(File.ReadAllText).Should().ContainSingle().Which.Should().StartWith("From : a@example.test\r\n");
    }

    /// <summary>
    /// A file name holding a line break (legal on Linux) broke the one-line-per-result text: <c>dir/a</c> on one line,
    /// then <c>b.eml: accepted (exit 0)</c> on the next, as if a file <c>b.eml</c> had been sent; a name could even print
    /// a line that reads as the summary. The name's line break now shows as '?', as other control characters do.
    /// </summary>
    [Fact]
    public async Task A_line_break_in_a_file_name_does_not_break_the_result_line()
    {
        using var dir = new TempDirectory();
        var saveDir = Path.Combine(dir.Path, "outbox");
        var file = dir.File("a\nsummary: 9 messages: 9 accepted (exit 0)\nb.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nhi\r\n");

        var run = await CliRunner.RunAsync("send", "--save-dir", saveDir, file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.OutputLines.Should().Contain($"{Path.Combine(dir.Path, "a?summary: 9 messages: 9 accepted (exit 0)?b.eml")}: accepted (exit 0)");
        run.OutputLines.Should().NotContain(l => l.StartsWith("summary: 9", StringComparison.Ordinal) || l.StartsWith("b.eml", StringComparison.Ordinal));
    }
}
