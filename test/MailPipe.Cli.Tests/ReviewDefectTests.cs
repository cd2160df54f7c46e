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
}
