using System.Diagnostics;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>`mailpipe send` from the outside, as a fresh reviewer tries it (issue #15).</summary>
public class SendBreakerTests
{
    [Fact]
    public async Task A_directory_of_more_large_files_than_the_process_may_open_at_once_is_sent_whole()
    {
        // Files over OutgoingMessage.SmallFileLimit are streamed. With 110 of them and a limit of 100 open files (macOS
        // starts shells with 256, many Linux desktops with 1,024), they must not all be held open at once.
        await using var server = ScriptedSmtpServer.WithAsyncData("220 sink.test", ScriptedSmtpServer.AcceptAll, _ => Task.FromResult<string?>("250 2.0.0 queued"));
        using var dir = new TempDirectory();
        var body = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(new string('x', 76) + "\r\n", 14_000)));
        body.Length.Should().BeGreaterThan(OutgoingMessage.SmallFileLimit);
        for (var i = 0; i < 110; i++)
        {
            dir.File($"m{i:000}.eml", [.. Encoding.ASCII.GetBytes($"From: a@example.test\r\nTo: b{i}@example.test\r\nSubject: large {i}\r\n\r\n"), .. body]);
        }

        var (exit, output, error) = await RunWithOpenFileLimitAsync(100, "send", "--server", server.Address, dir.Path);

        exit.Should().Be(0, error);
        output.Should().Contain("summary: 110 messages: 110 accepted");
    }

    [Fact]
    public async Task Attachments_larger_than_a_built_message_can_hold_are_a_usage_error_before_connecting()
    {
        // A 1.5 GB --attach was read, connected to the server, then failed while the message was built ('Stream was
        // too long') and was reported as a connection failure (exit 2). A sparse file: no 1.5 GB is written.
        using var dir = new TempDirectory();
        var large = System.IO.Path.Combine(dir.Path, "video.bin");
        using (var file = File.Create(large))
        {
            file.SetLength(1_500_000_000);
        }

        var run = await CliRunner.RunAsync("send", "--server", "127.0.0.1:1", "--from", "a@example.test", "--to", "b@example.test", "--body", "x", "--attach", large);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain("--attach: the attachments total 1,500,000,000 bytes").And.Contain("at most 1,073,741,824 bytes");
        run.Error.Should().NotContain("127.0.0.1:1", "nothing was connected to");
    }

    private static async Task<(int Exit, string Output, string Error)> RunWithOpenFileLimitAsync(int limit, params string[] arguments)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        string[] command = ["-c", $"ulimit -n {limit} && exec \"$0\" \"$@\"", DotnetHost(), Path.Combine(AppContext.BaseDirectory, "MailPipe.Cli.dll"), .. arguments];
        foreach (var argument in command)
        {
            info.ArgumentList.Add(argument);
        }

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await output, await error);
    }

    private static string DotnetHost() => Environment.ProcessPath is { } host && Path.GetFileNameWithoutExtension(host) == "dotnet" ? host : "dotnet";
}
