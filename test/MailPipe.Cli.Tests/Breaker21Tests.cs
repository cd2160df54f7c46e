using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The CLI run as a user runs it, on inputs earlier rounds had not tried (session 10, breaker21): each test here
/// failed before the change it came with, unless its summary says it is a probe that held.
/// </summary>
public class Breaker21Tests
{
    /// <summary>
    /// An option that takes one value, given twice, is a usage error (exit 1, one line, nothing sent) as the README
    /// says of every usage problem. <c>--from</c>, <c>--subject</c>, <c>--body</c> and <c>--auth</c> given twice were
    /// read by the send command's combination check before the parser's own error was reported: an unhandled
    /// <c>InvalidOperationException</c> with a stack trace, exit 134.
    /// </summary>
    [Theory]
    [InlineData("--from", "a@example.test", "--from", "b@example.test", "m.eml")]
    [InlineData("--subject", "a", "--subject", "b", "m.eml")]
    [InlineData("--body", "a", "--body", "b", "m.eml")]
    [InlineData("--auth", "PLAIN", "--auth", "LOGIN", "--user", "u", "--password-env", "HOME", "--server", "127.0.0.1:1", "m.eml")]
    [InlineData("-f", "a@example.test", "-f", "b@example.test", "--to", "c@example.test")]
    public async Task A_single_value_option_given_twice_is_a_usage_error_not_a_crash(params string[] args)
    {
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n");
        var run = await CliRunner.RunAsync(["send", .. args.Select(a => a == "m.eml" ? file : a)]);

        run.ExitCode.Should().Be(1);
        run.Output.Should().BeEmpty();
        run.Error.Should().Contain($"Option '{args[0]}' expects a single argument but 2 were provided");
        run.Error.Should().NotContain("   at ");
    }
}
