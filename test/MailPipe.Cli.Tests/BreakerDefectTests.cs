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

    [Fact]
    public async Task An_interrupted_batch_still_reports_every_message_and_the_summary()
    {
        // Ctrl+C (or SIGTERM) during `mailpipe send a.eml b.eml c.eml` ended the process without a word about b.eml, whose
        // end of data was written (it may have been delivered), and c.eml: a user re-running the batch sent b.eml twice.
        var endOfData = 0;
        var secondWritten = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource<string?>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.WithAsyncData("220 scripted.test", ScriptedSmtpServer.AcceptAll, _ =>
        {
            if (Interlocked.Increment(ref endOfData) == 1)
            {
                return Task.FromResult<string?>("250 2.0.0 queued");
            }

            secondWritten.TrySetResult();
            return never.Task; // no reply to the second message's end of data
        });
        using var dir = new TempDirectory();
        var files = new[] { "a", "b", "c" }.Select(n => dir.File($"{n}.eml", $"From: a@example.test\r\nTo: {n}@example.test\r\nSubject: {n}\r\n\r\nbody\r\n")).ToArray();
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        using var interrupt = new CancellationTokenSource();

        var run = Program.RunAsync(["send", "--server", server.Address, "--json", .. files], output, error, interrupt.Token);
        await secondWritten.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await interrupt.CancelAsync();
        var exitCode = await run.WaitAsync(TimeSpan.FromSeconds(30));
        never.TrySetResult(null);

        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).ToList();
        lines.Where(l => l.GetProperty("type").GetString() == "message").Select(l => l.GetProperty("outcome").GetString())
            .Should().Equal(["accepted", "unknown", "notSent"], error.ToString());
        var summary = lines.Last();
        summary.GetProperty("type").GetString().Should().Be("summary");
        summary.GetProperty("unknown").GetInt32().Should().Be(1);
        exitCode.Should().Be(7, "an outcome is unknown");
        error.ToString().Should().Contain("interrupted");
    }

    [Theory]
    [InlineData("send", "--ca-file")]
    [InlineData("send", "--tls-cert")]
    [InlineData("probe", "--ca-file")]
    public async Task A_missing_tls_file_is_named_with_its_option(string command, string option)
    {
        // `mailpipe send ... --starttls --ca-file corp-ca.pem` with a typo in the path said only "File does not exist: 'corp-ca.pem'".
        var missing = Path.Combine(Path.GetTempPath(), "mailpipe-no-such-" + Guid.NewGuid().ToString("N") + ".pem");
        string[] args = command == "send"
            ? ["send", "--server", "127.0.0.1:1", "--starttls", option, missing, "--from", "a@example.test", "--to", "b@example.test", "--body", "x"]
            : ["probe", "--server", "127.0.0.1:1", "--starttls", option, missing];

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain($"{option}: '{missing}' is not a file");
    }
}
