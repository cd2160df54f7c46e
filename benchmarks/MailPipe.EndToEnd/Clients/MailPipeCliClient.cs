using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// The built <c>mailpipe</c> tool (src/MailPipe.Cli, Release build; or the path in <c>MAILPIPE_CLI</c>) as a user runs
/// it: <c>mailpipe send --server 127.0.0.1:PORT --json DIR</c> over a directory of N .eml files holding the workload's
/// message (envelope from their From and To fields). With <paramref name="wholeProcess"/> the time is the whole process,
/// start to exit (runtime start, reading the files, connect, the batch, QUIT, output); otherwise it is the tool's own
/// summary clock (elapsedSeconds: connect to the last reply of the batch, QUIT excluded). CPU is the child's user +
/// system time; allocation is not measured (another process).
/// </summary>
internal sealed class MailPipeCliClient(bool wholeProcess) : ClientRunner
{
    private static readonly Dictionary<(int Size, int Recipients, int Count), string> Directories = [];

    public override string Name => wholeProcess ? "mailpipe-cli-process" : "mailpipe-cli";

    public override string Description => wholeProcess
        ? "the built mailpipe tool, `mailpipe send --server 127.0.0.1:PORT --json DIR` over N .eml files, whole process (start to exit)"
        : "the built mailpipe tool, `mailpipe send --server 127.0.0.1:PORT --json DIR` over N .eml files, its summary clock (connect to last reply)";

    public override string? UnavailableReason => CliPath() is null ? "the mailpipe tool is not built: dotnet build src/MailPipe.Cli -c Release (or set MAILPIPE_CLI)" : null;

    public override async Task<Measurement> RunAsync(Workload workload, int port, int messages, TimeSpan timeLimit, CancellationToken cancellationToken)
    {
        var directory = FilesFor(workload, messages);
        var cli = CliPath()!;
        var info = new ProcessStartInfo(cli.EndsWith(".dll", StringComparison.Ordinal) ? "dotnet" : cli)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cli.EndsWith(".dll", StringComparison.Ordinal))
        {
            info.ArgumentList.Add(cli);
        }

        foreach (var argument in new[] { "send", "--server", $"127.0.0.1:{port}", "--json", directory })
        {
            info.ArgumentList.Add(argument);
        }

        var cpuBefore = CpuTimes.Children();
        var start = Stopwatch.GetTimestamp();
        using var process = Process.Start(info) ?? throw new InvalidOperationException("mailpipe did not start.");
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        string? last = null;
        var lines = 0;
        while (await process.StandardOutput.ReadLineAsync(cancellationToken) is { } line)
        {
            last = line;
            lines++;
        }

        await process.WaitForExitAsync(cancellationToken);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var cpu = CpuTimes.Children() - cpuBefore;
        var errorText = await error;
        if (process.ExitCode != 0 || last is null)
        {
            throw new InvalidOperationException($"mailpipe exited with {process.ExitCode}: {errorText.Trim()}");
        }

        using var summary = JsonDocument.Parse(last);
        var accepted = summary.RootElement.GetProperty("accepted").GetInt32();
        if (accepted != messages || lines != messages + 1)
        {
            throw new InvalidOperationException($"mailpipe accepted {accepted} of {messages} messages ({lines} output lines).");
        }

        var clock = TimeSpan.FromSeconds(summary.RootElement.GetProperty("elapsedSeconds").GetDouble());
        return new Measurement(messages, wholeProcess ? elapsed : clock, -1, cpu);
    }

    /// <summary>The tool: <c>MAILPIPE_CLI</c>, else the Release build under src/MailPipe.Cli found from the working directory or this program's folder upwards.</summary>
    private static string? CliPath()
    {
        if (Environment.GetEnvironmentVariable("MAILPIPE_CLI") is { Length: > 0 } configured)
        {
            return File.Exists(configured) ? configured : null;
        }

        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                var build = Path.Combine(directory.FullName, "src", "MailPipe.Cli", "bin", "Release", "net10.0");
                var apphost = Path.Combine(build, "MailPipe.Cli");
                if (File.Exists(apphost))
                {
                    return apphost;
                }

                var dll = Path.Combine(build, "MailPipe.Cli.dll");
                if (File.Exists(dll))
                {
                    return dll;
                }
            }
        }

        return null;
    }

    /// <summary>A directory of <paramref name="count"/> copies of the workload's message (m00000.eml, ...), written once per case.</summary>
    private static string FilesFor(Workload workload, int count)
    {
        var key = (workload.Size, workload.Recipients.Count, count);
        lock (Directories)
        {
            if (Directories.TryGetValue(key, out var existing))
            {
                return existing;
            }

            var directory = Path.Combine(Path.GetTempPath(), $"mailpipe-e2e-cli-{Environment.ProcessId}-{workload.Size}-{workload.Recipients.Count}-{count}");
            Directory.CreateDirectory(directory);
            for (var i = 0; i < count; i++)
            {
                File.WriteAllBytes(Path.Combine(directory, string.Create(CultureInfo.InvariantCulture, $"m{i:D5}.eml")), workload.Message);
            }

            Directories[key] = directory;
            AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(directory);
            return directory;
        }
    }

    private static void TryDelete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
