using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>--json streams one line per message as its outcome is known; a batch shows progress on a terminal and nothing when standard error is redirected.</summary>
public class StreamingAndProgressTests
{
    private const string Message = "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n\r\nbody\r\n";

    private static string? Pipelining(string command) =>
        command.StartsWith("EHLO", StringComparison.Ordinal) ? "250-scripted.test\r\n250-PIPELINING\r\n250 8BITMIME" : ScriptedSmtpServer.AcceptAll(command);

    [Fact]
    public async Task Json_prints_the_first_message_before_the_last_one_is_answered()
    {
        var output = new LineSignallingWriter();
        var dataSeen = 0;
        var heldUntilFirstLine = false;
        await using var server = ScriptedSmtpServer.WithAsyncData("220 scripted.test", Pipelining, async _ =>
        {
            if (Interlocked.Increment(ref dataSeen) == 3)
            {
                // The last message's final reply waits until the CLI has printed the first message's line.
                heldUntilFirstLine = await Task.WhenAny(output.FirstLine, Task.Delay(TimeSpan.FromSeconds(20))) == output.FirstLine;
            }

            return "250 2.0.0 queued";
        });
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);
        var error = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));

        var code = await Program.RunAsync(["send", "--server", server.Address, "--json", file, file, file], output, error, timeout.Token);

        code.Should().Be(0, output + error.ToString());
        heldUntilFirstLine.Should().BeTrue("the first JSON line must be printed while the last message still waits for its reply");
        using var first = JsonDocument.Parse(await output.FirstLine);
        first.RootElement.GetProperty("index").GetInt32().Should().Be(1);
        first.RootElement.GetProperty("outcome").GetString().Should().Be("accepted");
        output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().HaveCount(4, "three messages and the summary");
    }

    [Fact]
    public async Task Progress_shows_on_a_terminal()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);
        var results = Path.Combine(dir.Path, "results.txt");
        var typescript = Path.Combine(dir.Path, "typescript");
        var command = $"{Quote(DotnetHost())} {Quote(CliDll)} send --server {server.Address} {Quote(file)} {Quote(file)} {Quote(file)} > {Quote(results)}";

        // script gives the command a pseudo-terminal; standard output goes to a file, so the typescript holds standard error.
        var (exit, _) = await RunAsync("script", ["-qfec", command, typescript]);

        exit.Should().Be(0);
        var terminal = await File.ReadAllTextAsync(typescript);
        terminal.Should().Contain("3/3 messages", "the progress ends with done/total");
        terminal.Should().MatchRegex(@"\d+ msgs/s");
        (await File.ReadAllTextAsync(results)).Should().Contain("summary: 3 messages: 3 accepted");
        server.Messages.Should().HaveCount(3);
    }

    [Fact]
    public async Task No_progress_and_no_escape_sequences_when_standard_error_is_redirected()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var (exit, error) = await RunAsync(DotnetHost(), [CliDll, "send", "--server", server.Address, file, file, file]);

        exit.Should().Be(0, error);
        error.Should().NotContain("messages,").And.NotContain("msgs/s").And.NotContain("\u001b").And.NotContain("\r");
        error.Should().BeEmpty();
        server.Messages.Should().HaveCount(3);
    }

    private static string CliDll => Path.Combine(AppContext.BaseDirectory, "MailPipe.Cli.dll");

    private static string DotnetHost() => Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>Runs a process with standard output and error redirected; returns the exit code and standard error.</summary>
    private static async Task<(int Exit, string Error)> RunAsync(string program, string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        await output;
        return (process.ExitCode, await error);
    }

    /// <summary>Standard output that completes <see cref="FirstLine"/> as soon as the first line is written.</summary>
    private sealed class LineSignallingWriter : StringWriter
    {
        private readonly TaskCompletionSource<string> _firstLine = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public LineSignallingWriter()
            : base(new StringBuilder()) => NewLine = "\n";

        public Task<string> FirstLine => _firstLine.Task;

        public override void Write(char value)
        {
            base.Write(value);
            Check();
        }

        public override void Write(string? value)
        {
            base.Write(value);
            Check();
        }

        public override void Write(char[] buffer, int index, int count)
        {
            base.Write(buffer, index, count);
            Check();
        }

        private void Check()
        {
            var text = ToString();
            var end = text.IndexOf('\n', StringComparison.Ordinal);
            if (end >= 0)
            {
                _firstLine.TrySetResult(text[..end]);
            }
        }
    }
}
