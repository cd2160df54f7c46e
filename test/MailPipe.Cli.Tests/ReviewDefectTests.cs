namespace MailPipe.Cli.Tests;

/// <summary>Defects found by the new-user review, each with the run that showed it.</summary>
public class ReviewDefectTests
{
    [Fact]
    public async Task An_empty_file_is_an_input_error_and_nothing_is_sent()
    {
        // `cat missing.eml | mailpipe send -f a -t b -` used to deliver an empty message (exit 0).
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var empty = dir.File("empty.eml", []);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--from", "a@example.test", "--to", "b@example.test", empty);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        (run.Output + run.Error).Should().Contain("empty");
        server.Messages.Should().BeEmpty();
    }

    [Fact]
    public async Task A_built_message_to_a_non_ascii_address_goes_as_8bitmime_with_smtputf8()
    {
        // `mailpipe send -f a@example.test -t ünï@example.test --body x` to a server with SMTPUTF8 and 8BITMIME (Postfix,
        // the embedded server) was not sent (exit 6): the To field is UTF-8 but the ASCII body made BODY=7BIT.
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("send", "--from", "a@example.test", "--to", "ünï@example.test", "--body", "x", "--save-dir", dir.Path, "--json");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var saved = Directory.GetFiles(dir.Path, "*.eml").Should().ContainSingle().Subject;
        File.ReadAllText(saved).Should().Contain("To: ünï@example.test");
    }
}

/// <summary>A --subject with a line break is refused, as a --header with one is.</summary>
public class ReviewSubjectTests
{
    [Theory]
    [InlineData("hi\r\nBcc: evil@example.test")]
    [InlineData("hi\nthere")]
    public async Task A_subject_with_a_line_break_is_a_usage_error_and_nothing_is_sent(string subject)
    {
        // It used to be sent with the lines joined ("hiBcc: evil@example.test"), exit 0.
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("send", "--from", "a@example.test", "--to", "b@example.test", "--subject", subject, "--body", "x", "--save-dir", dir.Path);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain("--subject").And.Contain("line break");
        Directory.GetFiles(dir.Path, "*.eml").Should().BeEmpty();
    }
}

/// <summary>Usage errors of the parser itself (an enumeration value) are one line, as the README says.</summary>
public class ReviewUsageLineTests
{
    [Theory]
    [InlineData("--quit-after", "foo", "'connect', 'banner', 'ehlo', 'tls', 'auth', 'mail', 'rcpt'")]
    [InlineData("--ret", "foo", "'FULL', 'HDRS'")]
    public async Task A_bad_enumeration_value_is_one_line_naming_each_choice_once(string option, string value, string choices)
    {
        var run = await CliRunner.RunAsync("send", "--server", "127.0.0.1:1", "--from", "a@example.test", "--to", "b@example.test", option, value);

        run.ExitCode.Should().Be(1);
        var lines = run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        lines.Should().HaveCount(2, run.Error);
        lines[0].Should().Contain($"'{value}'").And.EndWith(choices);
        lines[1].Should().Contain("--help");
    }
}
