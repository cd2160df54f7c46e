using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>Runs <c>mailpipe</c> in-process and captures what it prints.</summary>
internal static class CliRunner
{
    public sealed record Run(int ExitCode, string Output, string Error)
    {
        public string[] OutputLines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public static async Task<Run> RunAsync(params string[] args)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var code = await Program.RunAsync(args, output, error, timeout.Token);
        return new Run(code, output.ToString(), error.ToString());
    }

    /// <summary>
    /// Runs <c>mailpipe</c> in-process and interrupts it (Ctrl+C) once <paramref name="reached"/> is set (the scripted
    /// server got to the point under test and holds it until <paramref name="release"/>); checks that the run ends
    /// within 30 s of the interruption, then releases the server.
    /// </summary>
    public static async Task<Run> RunInterruptedAsync(string[] args, ManualResetEventSlim reached, ManualResetEventSlim release, string because)
    {
        var output = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        var error = new StringWriter(new StringBuilder()) { NewLine = "\n" };
        using var interrupt = new CancellationTokenSource();
        var running = Task.Run(() => Program.RunAsync(args, output, error, interrupt.Token));
        await Task.Run(() => reached.Wait(TimeSpan.FromSeconds(60)));
        reached.IsSet.Should().BeTrue(because);
        await interrupt.CancelAsync();
        var finished = await Task.WhenAny(running, Task.Delay(TimeSpan.FromSeconds(30)));
        release.Set();
        finished.Should().BeSameAs(running, "the process ends on Ctrl+C");
        return new Run(await running, output.ToString(), error.ToString());
    }

    /// <summary>Runs another program (swaks, Python) with <paramref name="standardInput"/> written to it; its exit code and everything it printed (standard output, then standard error).</summary>
    public static async Task<(int ExitCode, string Output)> RunExternalAsync(string file, string standardInput, params string[] args)
    {
        var start = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        await process.StandardInput.WriteAsync(standardInput);
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await output + await error);
    }
}

/// <summary>A temporary folder, deleted at the end of the test.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mailpipe-cli-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name, byte[] content)
    {
        var path = System.IO.Path.Combine(Path, name);
        System.IO.File.WriteAllBytes(path, content);
        return path;
    }

    public string File(string name, string content) => File(name, Encoding.UTF8.GetBytes(content));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
