namespace MailPipe.Cli.Tests;

/// <summary>
/// A file named more than once on the command line (found by peer19cli in session 19: <c>outbox/ outbox/*.eml</c>, or a
/// shell's expansion beside the file's own name) was sent once per naming: two copies delivered. It is now sent once,
/// and standard error says so.
/// </summary>
public class RepeatedFileTests
{
    [Fact]
    public async Task A_file_found_by_a_directory_and_a_wildcard_and_by_name_is_sent_once()
    {
        using var dir = new TempDirectory();
        var outbox = Path.Combine(dir.Path, "outbox");
        Directory.CreateDirectory(outbox);
        var a = Path.Combine(outbox, "a.eml");
        var b = Path.Combine(outbox, "b.eml");
        File.WriteAllText(a, "From: a@example.test\r\nTo: b@example.test\r\nSubject: a\r\n\r\nhi\r\n");
        File.WriteAllText(b, "From: a@example.test\r\nTo: b@example.test\r\nSubject: b\r\n\r\nhi\r\n");
        var saveDir = Path.Combine(dir.Path, "saved");

        var run = await CliRunner.RunAsync("send", "--save-dir", saveDir, outbox, Path.Combine(outbox, "*.eml"), a);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        Directory.GetFiles(saveDir).Should().HaveCount(2);
        run.OutputLines.Where(l => l.EndsWith(": accepted (exit 0)", StringComparison.Ordinal)).Should().HaveCount(2);
        run.Output.Should().Contain("summary: 2 messages");
        run.Error.Should().Contain($"{a} is named more than once (by name, a directory or a wildcard): sent once")
            .And.Contain($"{b} is named more than once");
    }

    [Fact]
    public async Task A_missing_file_named_twice_is_reported_once()
    {
        using var dir = new TempDirectory();
        var missing = Path.Combine(dir.Path, "missing.eml");
        var saveDir = Path.Combine(dir.Path, "saved");

        var run = await CliRunner.RunAsync("send", "--save-dir", saveDir, missing, missing);

        // Reported once, as the one file it is (not read twice, not a usage error).
        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.OutputLines.Count(l => l.StartsWith($"{missing}: not sent", StringComparison.Ordinal)).Should().Be(1, run.Output);
        run.Output.Should().Contain("summary: 1 message: 0 accepted, 0 refused, 1 not sent");
    }
}
