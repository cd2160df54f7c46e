using System.Diagnostics;

namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe send -</c> run as its own process, with standard input closed, redirected, or a pipe.</summary>
public class StandardInputTests
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
