namespace MailPipe.Cli.Tests;

/// <summary>
/// Argument checks of <c>mailpipe send</c>: a <c>--subject</c> or <c>--body</c> that was not valid UTF-8 went out with
/// U+FFFD in place of the bytes, silently (a <c>--header</c> value was already refused); <c>--quit-after tls</c> without
/// any TLS option stopped after EHLO and exited 0, a TLS check that checked nothing.
/// </summary>
public sealed class Arguments20Tests
{
    /// <summary>.NET decodes the command line as UTF-8: a Latin-1 byte (a terminal in another encoding) arrives as U+FFFD.</summary>
    [Theory]
    [InlineData("--subject", "Gr\uFFFD\uFFFDe")]
    [InlineData("--body", "caf\uFFFD au lait")]
    public async Task A_subject_or_body_that_is_not_UTF8_is_a_usage_error_and_nothing_is_sent(string option, string value)
    {
        await using var server = new Breaker19Server();
        var header = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--header", $"X-Test: {value}");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", option, value);

        run.ExitCode.Should().Be(header.ExitCode, "as for --header; " + run.Output + run.Error);
        run.ExitCode.Should().Be(ExitCodes.UsageOrInput);
        run.Error.Should().Contain($"{option}:").And.Contain("is not valid UTF-8");
        run.Output.Should().BeEmpty();
        server.Connections.Should().Be(0, "nothing is sent");
    }

    [Theory]
    [InlineData("--subject", "Grüße")]
    [InlineData("--body", "café au lait")]
    public async Task A_subject_or_body_in_UTF8_is_sent(string option, string value)
    {
        await using var server = new Breaker19Server();

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", option, value);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        server.EndsOfData.Should().ContainSingle();
    }

    [Fact]
    public async Task Quit_after_tls_without_a_TLS_option_is_a_usage_error()
    {
        await using var server = new Breaker19Server();
        var other = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--requiretls");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--quit-after", "tls");

        run.ExitCode.Should().Be(other.ExitCode, "as other invalid combinations of options; " + run.Output + run.Error);
        run.ExitCode.Should().Be(ExitCodes.UsageOrInput);
        run.Error.Should().Contain("--quit-after tls needs --tls, --starttls or --tls-optional");
        server.Connections.Should().Be(0, "nothing is done");
    }

    /// <summary>With <c>--tls-optional</c> the step is where TLS would be (after EHLO when the server does not offer STARTTLS): allowed.</summary>
    [Fact]
    public async Task Quit_after_tls_with_tls_optional_is_allowed()
    {
        await using var server = new Breaker19Server();

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "-f", "a@example.test", "-t", "b@example.test", "--tls-optional", "--quit-after", "tls");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        server.Connections.Should().Be(1);
        server.EndsOfData.Should().BeEmpty();
    }
}
