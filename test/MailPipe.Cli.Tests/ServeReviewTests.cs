namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe serve</c> tried as a reviewer would (session 12): each test here failed before its fix.</summary>
public class ServeReviewTests
{
    /// <summary>
    /// <c>--listen ""</c> (<c>--listen "$ADDRESS"</c> with the variable unset) was taken as the default 127.0.0.1:2525
    /// without a word: the server listened where it was not asked to (or failed with "Address already in use", exit 2).
    /// Every other empty value (a path, <c>--server</c>, <c>--timeout</c>) is a usage error; so is this one now.
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    public async Task An_empty_listen_address_is_a_usage_error_not_the_default(string value)
    {
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync("serve", "--listen", value, "--save-dir", dir.Path);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().StartWith("mailpipe serve: --listen: the address is empty; give host:port, [IPv6]:port or :port");
        run.Output.Should().NotContain("listening");
    }
}
