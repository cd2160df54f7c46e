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

    /// <summary>
    /// <c>mailpipe send outbox/ &gt; /dev/full</c> (standard output on a full disk): the first failed write of a result
    /// threw out of the batch, which stopped midway with messages in flight, and the process exited 1 (usage or input
    /// error) with a stack trace. The batch now goes on; the lost results are said on standard error with the summary,
    /// and the exit code is the batch's.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_batch_goes_on_when_standard_output_fails_and_says_so_on_standard_error(bool json)
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var files = Enumerable.Range(1, 5).Select(i => dir.File($"m{i}.eml", $"From: a@example.test\r\nTo: b@example.test\r\nSubject: {i}\r\n\r\nbody\r\n")).ToArray();
        using var output = new FailingWriter();
        var error = new StringWriter();
        string[] args = ["send", "--server", server.Address, .. json ? new[] { "--json" } : [], .. files];

        var exit = await Program.RunAsync(args, output, error, CancellationToken.None);

        exit.Should().Be(0, error.ToString());
        server.Messages.Should().HaveCount(5);
        error.ToString().Should().Contain("writing the results to standard output failed (No space left on device)")
            .And.Contain("summary: 5 messages: 5 accepted").And.NotContain("   at ");
    }

    /// <summary>
    /// <c>mailpipe serve &gt; file</c> on a disk that fills up: the line of a message is printed after the message is
    /// saved, and its failure threw out of the message store, so the client got an error reply for a message that was
    /// saved (and would send it again). Now serve goes on without its lines and says so once on standard error.
    /// </summary>
    [Fact]
    public async Task Serve_goes_on_saving_when_standard_output_fails()
    {
        using var dir = new TempDirectory();
        using var output = new FailingWriter(allowFirstLine: true);
        var error = new StringWriter();
        using var stop = new CancellationTokenSource();
        var serve = Task.Run(() => Program.RunAsync(["serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path], output, error, stop.Token));
        var first = await output.FirstLine.WaitAsync(TimeSpan.FromSeconds(30));
        var address = System.Text.RegularExpressions.Regex.Match(first, @"listening on (\S+),").Groups[1].Value;

        var run = await CliRunner.RunAsync("send", "-s", address, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");
        var again = await CliRunner.RunAsync("send", "-s", address, "-f", "a@example.test", "-t", "b@example.test", "--body", "y");
        await stop.CancelAsync();
        var exit = await serve.WaitAsync(TimeSpan.FromSeconds(30));

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        again.ExitCode.Should().Be(0, again.Output + again.Error);
        Directory.GetFiles(dir.Path, "*.eml").Should().HaveCount(2);
        exit.Should().Be(0, error.ToString());
        error.ToString().Should().Contain("writing to standard output failed (No space left on device)").And.NotContain("   at ");
    }

    /// <summary><c>mailpipe probe &gt; /dev/full</c> printed "Unhandled exception" and a stack trace and exited 1.</summary>
    [Fact]
    public async Task Probe_says_when_its_report_cannot_be_written()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var output = new FailingWriter();
        var error = new StringWriter();

        var exit = await Program.RunAsync(["probe", "--server", server.Address], output, error, CancellationToken.None);

        exit.Should().Be(0, error.ToString());
        error.ToString().Should().Contain("writing the report to standard output failed (No space left on device)").And.NotContain("   at ");
    }

    /// <summary>A writer whose every write fails, as standard output on a full disk does.</summary>
    private sealed class FailingWriter(bool allowFirstLine = false) : TextWriter
    {
        private readonly TaskCompletionSource<string> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        /// <summary>The first line, the only one written when <c>allowFirstLine</c>.</summary>
        public Task<string> FirstLine => _first.Task;

        public override void Write(char value) => throw new IOException("No space left on device");

        public override void Write(string? value) => throw new IOException("No space left on device");

        public override void WriteLine(string? value)
        {
            if (!allowFirstLine || !_first.TrySetResult(value ?? string.Empty))
            {
                throw new IOException("No space left on device");
            }
        }

        public override void Flush()
        {
            if (!allowFirstLine)
            {
                throw new IOException("No space left on device");
            }
        }
    }
}
