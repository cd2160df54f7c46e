using System.Diagnostics;
using System.Globalization;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// Postfix's <c>smtp-source</c> (C), one session, all messages over it (<c>-s 1 -d</c>). The run is timed from process
/// start to exit, once with 1 message and once with N; the per-message figures are the difference over N − 1 messages,
/// so process start, connect, EHLO and QUIT cancel out as for the in-process clients. CPU is the child's user + system
/// time (getrusage(RUSAGE_CHILDREN)); allocation does not apply.
/// </summary>
internal sealed class SmtpSourceClient : ClientRunner
{
    public override string Name => "smtp-source";

    public override string Description => "Postfix smtp-source -s 1 -d -l SIZE -m N -r RCPTS (C; its own generated content of SIZE payload bytes plus a few headers); (run with N) − (run with 1)";

    public override string? UnavailableReason => File.Exists(SmtpSinkServer.SourcePath) ? null : $"{SmtpSinkServer.SourcePath} not found";

    public override async Task<Measurement> RunAsync(Workload workload, int port, int messages, TimeSpan timeLimit, CancellationToken cancellationToken)
    {
        var count = Math.Max(messages, 2);
        var (oneElapsed, oneCpu) = await RunOnceAsync(workload, port, 1, cancellationToken);
        var (allElapsed, allCpu) = await RunOnceAsync(workload, port, count, cancellationToken);
        var elapsed = allElapsed - oneElapsed;
        return new Measurement(count - 1, elapsed > TimeSpan.Zero ? elapsed : allElapsed, -1, allCpu - oneCpu);
    }

    private static async Task<(TimeSpan Elapsed, TimeSpan Cpu)> RunOnceAsync(Workload workload, int port, int count, CancellationToken cancellationToken)
    {
        var info = new ProcessStartInfo(SmtpSinkServer.SourcePath)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string[] arguments =
        [
            "-s", "1", "-d",
            "-l", workload.Size.ToString(CultureInfo.InvariantCulture),
            "-m", count.ToString(CultureInfo.InvariantCulture),
            "-r", workload.Recipients.Count.ToString(CultureInfo.InvariantCulture),
            "-f", Workload.Sender,
            "-t", "rcpt@example.test",
            "-M", "client.example.test",
            $"127.0.0.1:{port}",
        ];
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var cpuBefore = CpuTimes.Children();
        var start = Stopwatch.GetTimestamp();
        using var process = Process.Start(info) ?? throw new InvalidOperationException("smtp-source did not start.");
        var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var error = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var cpu = CpuTimes.Children() - cpuBefore;
        var errorText = await error;
        await output;
        if (process.ExitCode != 0 || errorText.Length > 0)
        {
            throw new InvalidOperationException($"smtp-source exited with {process.ExitCode}: {errorText.Trim()}");
        }

        return (elapsed, cpu);
    }
}
