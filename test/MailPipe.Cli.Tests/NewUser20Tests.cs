namespace MailPipe.Cli.Tests;

/// <summary>The CLI tried as a new user would from its README (session 20): each test here failed before its fix.</summary>
public class NewUser20Tests
{
    /// <summary>
    /// <c>mailpipe send --ca-file ca.pem</c> without a TLS mode said "--ca-file is a TLS setting: it needs --tls or
    /// --starttls", although <c>--tls-optional</c> takes it too (the README: "The TLS settings need one of them"): a user
    /// who wanted opportunistic TLS was pointed at the two options that make TLS required.
    /// </summary>
    [Theory]
    [InlineData("--ca-file", "ca.pem")]
    [InlineData("--tls-name", "mail.example.test")]
    [InlineData("--accept-name-mismatch", null)]
    public async Task A_TLS_setting_without_a_TLS_mode_names_every_option_that_takes_it(string option, string? value)
    {
        string[] args = value is null
            ? ["send", "-s", "127.0.0.1:1", option, "-f", "a@example.test", "-t", "b@example.test", "--body", "x"]
            : ["send", "-s", "127.0.0.1:1", option, value, "-f", "a@example.test", "-t", "b@example.test", "--body", "x"];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith($"mailpipe send: {option} is a TLS setting: it needs --tls, --starttls or --tls-optional");
        run.Output.Should().BeEmpty("a usage error connects to nothing and lists no message");
    }

    /// <summary>
    /// <c>mailpipe send --help</c> gave two defaults on one line: "--reconnect ... Default: 2. [default: 2]" and
    /// "--max-per-connection ... Default: 0, no limit. [default: 0]" (the option's text and System.CommandLine's
    /// <c>[default: X]</c>). Each option now states its default once.
    /// </summary>
    [Theory]
    [InlineData("send")]
    [InlineData("serve")]
    public async Task Help_states_each_default_once(string command)
    {
        var run = await CliRunner.RunAsync(command, "--help");

        run.ExitCode.Should().Be(0, run.Error);
        var withDefault = run.OutputLines.Where(l => l.Contains("[default:", StringComparison.Ordinal)).ToList();
        withDefault.Should().NotBeEmpty();
        withDefault.Should().NotContain(l => l.Contains("Default:", StringComparison.Ordinal) || l.Contains("Default ", StringComparison.Ordinal), "the text gives no default of its own besides [default: X]");
    }
}
