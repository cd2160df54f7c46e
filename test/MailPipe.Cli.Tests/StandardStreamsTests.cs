using System.Diagnostics;

namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe</c> run as its own process with a standard stream closed (<c>0&lt;&amp;-</c>, <c>&gt;&amp;-</c>, <c>2&gt;&amp;-</c>), redirected, or a pipe.</summary>
public class StandardStreamsTests
{
    private const string Message = "From: a@example.test\r\nTo: b@example.test\r\nSubject: t\r\n\r\nbody\r\n";

    /// <summary>
    /// Started with standard input closed (<c>0&lt;&amp;-</c>), the process hung forever: the .NET runtime opens a pipe
    /// of its own before Main, gets the lowest free descriptor, 0, and <c>-</c> read that pipe, which nobody writes.
    /// Now <c>-</c> is reported as not sent (exit 1, as an unreadable file), at once, and the other files still go.
    /// </summary>
    [Fact]
    public async Task Dash_with_standard_input_closed_is_not_sent_with_exit_1_and_the_other_files_still_go()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var (exit, output, error) = await RunInBashAsync($"exec {Quote(DotnetHost())} {Quote(CliDll)} send --server {server.Address} - {Quote(file)} 0<&-");

        exit.Should().Be(1, output + error);
        output.Should().Contain("-: not sent (exit 1)").And.Contain("-: cannot read standard input: it is closed");
        output.Should().Contain("summary: 2 messages: 1 accepted, 0 refused, 1 not sent");
        server.Messages.Should().ContainSingle();
    }

    /// <summary>The check for a closed standard input must not take a redirected file or a pipe for one.</summary>
    [Theory]
    [InlineData("exec CLI 0< FILE")]
    [InlineData("cat FILE | CLI")]
    public async Task Dash_reads_a_redirected_file_or_a_pipe(string template)
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);
        var command = template
            .Replace("CLI", $"{Quote(DotnetHost())} {Quote(CliDll)} send --server {server.Address} -", StringComparison.Ordinal)
            .Replace("FILE", Quote(file), StringComparison.Ordinal);

        var (exit, output, error) = await RunInBashAsync(command);

        exit.Should().Be(0, output + error);
        server.Messages.Should().ContainSingle();
    }

    /// <summary>
    /// Started with standard output closed (<c>&gt;&amp;-</c>), the runtime took descriptor 1 for a pipe of its own (read
    /// end): the message was sent, then printing its result failed (EBADF) and the process exited 1 with a stack trace
    /// (a script would send it again); a batch aborted the process (exit 134) in the middle. Now nothing is sent: the
    /// results would be lost, so it is a usage error (exit 1) said on standard error, before connecting.
    /// </summary>
    [Fact]
    public async Task Standard_output_closed_is_a_usage_error_before_anything_is_sent()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);

        var (exit, _, error) = await RunInBashAsync($"exec {Quote(DotnetHost())} {Quote(CliDll)} send --server {server.Address} {Quote(file)} {Quote(file)} 1>&-");

        exit.Should().Be(1, error);
        error.Should().Contain("standard output is closed").And.NotContain("Unhandled exception");
        server.Messages.Should().BeEmpty();
    }

    /// <summary>
    /// Started with standard error closed (<c>2&gt;&amp;-</c>), any line for standard error (a usage error, "cannot
    /// connect") aborted the process (exit 134) instead of exiting with its code; standard error's lines now go nowhere.
    /// </summary>
    /// <remarks>Standard error on a full disk (<c>2&gt;/dev/full</c>) aborted the process the same way.</remarks>
    [Theory]
    [InlineData("send --bogus", "2>&-", 1)]
    [InlineData("send -s 127.0.0.1:1 -f a@example.test -t b@example.test --body x", "2>&-", 2)]
    [InlineData("send --bogus", "2>/dev/full", 1)]
    [InlineData("send -s 127.0.0.1:1 -f a@example.test -t b@example.test --body x", "2>/dev/full", 2)]
    public async Task Standard_error_closed_loses_its_lines_but_not_the_exit_code(string arguments, string redirection, int expected)
    {
        var (exit, output, _) = await RunInBashAsync($"exec {Quote(DotnetHost())} {Quote(CliDll)} {arguments} {redirection}");

        exit.Should().Be(expected, output);
    }

    /// <summary>
    /// Standard output a pipe whose reader went away (<c>mailpipe send outbox/ | head -1</c>): .NET's console stream
    /// takes EPIPE for success, so every result after the reader left was dropped without a word (standard error empty,
    /// as for a batch that printed everything), and whoever read the first line could not tell that the batch went on
    /// to its end: used to tools that die of SIGPIPE, they would send it again. Now the batch still goes on (a batch is
    /// never stopped with messages in flight for its output's sake), nothing more is written to standard output, and
    /// standard error says once that the results went unread, with the summary; no stack trace, the batch's exit code.
    /// </summary>
    [Fact]
    public async Task Standard_output_whose_reader_went_away_says_on_standard_error_that_the_batch_went_on()
    {
        await using var server = await TestSmtpServer.StartAsync();
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", Message);
        var fifo = Path.Combine(dir.Path, "out.fifo");

        // A pipe with no reader left, made before the tool starts (no race with a reader such as head exiting):
        // descriptor 4 reads and writes the FIFO so that opening 5 for writing does not block, then 4 is closed.
        var (exit, output, error) = await RunInBashAsync(
            $"mkfifo {Quote(fifo)} && exec 4<>{Quote(fifo)} 5>{Quote(fifo)} && exec 4<&- && exec {Quote(DotnetHost())} {Quote(CliDll)} send --server {server.Address} {Quote(file)} {Quote(file)} >&5");

        exit.Should().Be(0, error);
        output.Should().BeEmpty();
        error.Should().Contain("broken pipe").And.Contain("the batch went on")
            .And.Contain("summary: 2 messages: 2 accepted").And.NotContain("Unhandled exception").And.NotContain("   at ");
        server.Messages.Should().HaveCount(2);
    }

    private static string CliDll => Path.Combine(AppContext.BaseDirectory, "MailPipe.Cli.dll");

    private static string DotnetHost() => Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";

    private static string Quote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static async Task<(int Exit, string Output, string Error)> RunInBashAsync(string command)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(command);
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var backstop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(backstop.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{command}' still running after 60 s (a hang): {await error}");
        }

        return (process.ExitCode, await output, await error);
    }
}
