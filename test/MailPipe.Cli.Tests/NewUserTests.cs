namespace MailPipe.Cli.Tests;

/// <summary>The CLI tried as a new user would from its README (session 11): each test here failed before its fix.</summary>
public class NewUserTests
{
    /// <summary>
    /// A value outside an option's fixed list said "mailpipe send: Argument 'ALL' not recognized. Must be one of: ...",
    /// without the option it was given to; every other usage error names its option first.
    /// </summary>
    [Theory]
    [InlineData("send", "--ret", "ALL", "'FULL', 'HDRS'")]
    [InlineData("send", "--quit-after", "data", "'connect', 'banner'")]
    public async Task A_value_outside_an_options_list_names_the_option(string command, string option, string value, string listed)
    {
        string[] args = command == "send"
            ? ["send", "-s", "127.0.0.1:1", "-f", "a@example.test", "-t", "b@example.test", "--body", "x", option, value]
            : ["probe", "-s", "127.0.0.1:1", option, value];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Error);
        var first = run.Error.Split('\n')[0];
        first.Should().StartWith($"mailpipe {command}: {option}: ").And.Contain($"'{value}'").And.Contain(listed);
    }
}
