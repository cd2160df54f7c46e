namespace MailPipe.Cli.Tests;

/// <summary>
/// A password or token given where the name of its environment variable belongs (session 12 review): each test here
/// failed before its fix.
/// </summary>
public class SecretVariableTests
{
    /// <summary>
    /// <c>--password-env</c> and serve's <c>--auth-password-env</c> take a variable's name. Given the secret itself (an
    /// OAuth token ending in '=', a password with '@' or '-'), the usage error echoed it to standard error — the very
    /// message that said "give the variable's name, not the password" — and so into terminal scroll-back and CI logs.
    /// A value that is not a shell variable name is now not shown.
    /// </summary>
    [Theory]
    [InlineData("send", "ya29.a0AfH6SMB-secret-token==")]
    [InlineData("send", "s3cr3t-P@ss word")]
    [InlineData("serve", "ya29.a0AfH6SMB-secret-token==")]
    [InlineData("serve", "s3cr3t-P@ss word")]
    public async Task A_secret_given_as_the_variable_name_is_never_echoed(string command, string secret)
    {
        using var dir = new TempDirectory();
        string[] args = command == "send"
            ? ["send", "-s", "127.0.0.1:1", "--user", "me", "--password-env", secret, "--starttls", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"]
            : ["serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path, "--auth-user", "me", "--auth-password-env", secret];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        (run.Output + run.Error).Should().NotContain(secret).And.NotContain("secret-token").And.NotContain("P@ss");
        run.Error.Should().Contain("password-env").And.Contain("not shown");
    }

    /// <summary>A shell variable's name is still named when it is not set: that is what the user needs to see.</summary>
    [Theory]
    [InlineData("send", "--password-env")]
    [InlineData("serve", "--auth-password-env")]
    public async Task An_unset_variable_with_a_variable_name_is_still_named(string command, string option)
    {
        using var dir = new TempDirectory();
        const string Name = "MAILPIPE_TEST_UNSET_VARIABLE_4711";
        string[] args = command == "send"
            ? ["send", "-s", "127.0.0.1:1", "--user", "me", option, Name, "--starttls", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"]
            : ["serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path, "--auth-user", "me", option, Name];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain(option).And.Contain(Name).And.Contain("not set or empty");
    }

    /// <summary>
    /// <c>mailpipe serve --password x</c> was refused (good) with a pointer to <c>--password-env</c>, an option serve
    /// does not have: serve's is <c>--auth-password-env</c>, with <c>--auth-user</c>.
    /// </summary>
    [Fact]
    public async Task Serve_refuses_a_password_on_the_command_line_pointing_at_its_own_option()
    {
        var run = await CliRunner.RunAsync("serve", "--auth-user", "me", "--password", "hunter2");

        run.ExitCode.Should().Be(1);
        run.Error.Should().Contain("--auth-password-env VARIABLE").And.NotContain("hunter2");
        run.Error.Replace("--auth-password-env", string.Empty, StringComparison.Ordinal).Should().NotContain("--password-env");
    }
}
