namespace MailPipe.Cli.Tests;

/// <summary>Defects found by an independent breaking review (session 3), each with the run that showed it.</summary>
public class BreakerDefectTests
{
    [Theory]
    [InlineData("sned", "send")]
    [InlineData("prob", "probe")]
    [InlineData("srve", "serve")]
    public async Task A_typo_in_the_command_names_the_command_and_the_nearest_one(string typo, string meant)
    {
        // `mailpipe sned -f a@example.test -t b@example.test --body y` said "unknown option '-f' (did you mean -h?)" and
        // never named 'sned'; `mailpipe prob --server x` said "unknown option '--server'".
        var run = await CliRunner.RunAsync(typo, "--server", "127.0.0.1:1", "-f", "a@example.test", "--body", "y");

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Output.Should().BeEmpty();
        run.Error.Should().Contain($"unknown command '{typo}' (did you mean {meant}?)");
        run.Error.Should().NotContain("unknown option", "the options belong to the command that was meant");
    }

    [Fact]
    public async Task An_unknown_command_far_from_every_command_lists_the_commands()
    {
        var run = await CliRunner.RunAsync("deliver", "x.eml");

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain("unknown command 'deliver'");
        run.Error.Should().Contain("send, probe, serve");
    }
}
