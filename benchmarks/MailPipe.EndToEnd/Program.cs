using System.Globalization;
using System.Runtime.InteropServices;
using MailPipe.EndToEnd;
using MailPipe.EndToEnd.Clients;

// MAILPIPE_BENCH_WORKITEMS=1: the thread pool's completed work items at exit (hops per message, from two run lengths).
if (Environment.GetEnvironmentVariable("MAILPIPE_BENCH_WORKITEMS") == "1")
{
    AppDomain.CurrentDomain.ProcessExit += (_, _) => Console.Error.WriteLine($"thread-pool work items: {ThreadPool.CompletedWorkItemCount}");
}

Options options;
try
{
    options = Options.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(Options.Usage(ClientCatalog.All.Select(c => c.Name)));
    return 1;
}

if (options.Help)
{
    Console.WriteLine(Options.Usage(ClientCatalog.All.Select(c => c.Name)));
    return 0;
}

MultiCaller.Callers = options.Callers;

if (!SmtpSinkServer.IsInstalled)
{
    Console.Error.WriteLine(SmtpSinkServer.InstallHint);
    return 2;
}

var clients = new List<ClientRunner>();
foreach (var client in ClientCatalog.All.Where(c => options.Clients.Count == 0 || options.Clients.Contains(c.Name)))
{
    if (client.UnavailableReason is { } reason)
    {
        Console.Error.WriteLine($"skipping {client.Name}: {reason}");
        continue;
    }

    clients.Add(client);
}

var unknown = options.Clients.Except(ClientCatalog.All.Select(c => c.Name)).ToList();
if (unknown.Count > 0 || clients.Count == 0)
{
    Console.Error.WriteLine($"Unknown or no clients: {string.Join(", ", unknown)}. Known: {string.Join(", ", ClientCatalog.All.Select(c => c.Name))}.");
    return 1;
}

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

var loadBefore = LoadAverage();
await using var builtin = options.BuiltinSink ? new ChunkingSink() : null;
using var sink = options.ServerPort > 0 || builtin is not null ? null : await SmtpSinkServer.StartAsync(options.Port);
var serverPort = sink?.Port ?? builtin?.Port ?? options.ServerPort;
Console.Error.WriteLine(sink is null ? $"sending to the server on 127.0.0.1:{serverPort}" : $"smtp-sink listening on 127.0.0.1:{sink.Port} ({sink.CommandLine})");
await using var proxy = options.RttMs > 0 ? new DelayProxy(serverPort, TimeSpan.FromMilliseconds(options.RttMs)) : null;
var port = proxy?.Port ?? serverPort;
if (proxy is not null)
{
    Console.Error.WriteLine($"delay proxy on 127.0.0.1:{proxy.Port}: server-to-client chunks held {options.RttMs} ms");
}

var results = new List<CaseResult>();
var started = DateTimeOffset.UtcNow;
try
{
    foreach (var size in options.Sizes)
    {
        foreach (var recipients in options.Recipients)
        {
            var workload = Workload.Create(size, recipients, options.MessagesFor(size));
            var caseResults = clients.Select(c => new CaseResult(workload, c)).ToList();
            results.AddRange(caseResults);
            Console.Error.WriteLine($"== {workload.Label}: {workload.Messages} messages per run, {options.Rounds} rounds");

            // Warm-up (JIT, connection code paths), not recorded; until the JIT is quiet with MAILPIPE_BENCH_WARMUP=jit (Warmup.cs).
            foreach (var result in caseResults)
            {
                await Warmup.RunAsync(count => RunAsync(result, count, record: false), workload.Messages, () => result.Failure is not null);
            }

            for (var round = 0; round < options.Rounds; round++)
            {
                // Interleaved, and the order rotates per round so that no client always runs first.
                for (var i = 0; i < caseResults.Count; i++)
                {
                    await RunAsync(caseResults[(i + round) % caseResults.Count], workload.Messages, record: true);
                }
            }
        }
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("Interrupted: reporting what was measured.");
}

var serverName = sink is not null ? "smtp-sink" : builtin is not null ? "the built-in CHUNKING sink" : $"127.0.0.1:{serverPort}";
var header = string.Join(Environment.NewLine,
[
    $"### MailPipe end-to-end vs {serverName}{(options.RttMs > 0 ? $", {options.RttMs} ms delay proxy" : string.Empty)}",
    string.Empty,
    $"- date: {started:yyyy-MM-dd HH:mm} UTC; {options.Rounds} interleaved rounds; time limit per in-process run {options.TimeLimit.TotalSeconds:0.#} s",
    $"- machine: {CpuModel()}, {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}",
    $"- load average (1/5/15 min) before: {loadBefore}; after: {LoadAverage()}",
    $"- runtime settings: {RuntimeSettings()}",
    clients.Any(c => c is MailPipeSenderClient or MailKitPoolClient or MailPipeBatch2Client) ? $"- callers: {options.Callers} concurrent callers share the mailpipe-sender, mailkit-pool and mailpipe-batch2 clients (connections: 2, 8 and 2)" : string.Empty,
    $"- server: {(sink is not null ? $"`{sink.CommandLine}`" : builtin is not null ? $"the harness's own PIPELINING + CHUNKING sink on port {serverPort}" : $"the server already listening on port {serverPort}")} on 127.0.0.1, one connection per run; connect, EHLO and QUIT untimed",
    proxy is null ? string.Empty : $"- delay proxy: mean lateness of held chunks {proxy.MeanLateness.TotalMilliseconds:0.000} ms",
]).TrimEnd();
var report = Report.Markdown(results, options, header);
Console.WriteLine(report);
if (options.OutputFile is not null)
{
    await File.WriteAllTextAsync(options.OutputFile, report);
}

return results.Any(r => r.Runs.Count == 0) ? 3 : 0;

async Task RunAsync(CaseResult result, int messages, bool record)
{
    if (result.Failure is not null && result.Runs.Count == 0 && record)
    {
        // A client that failed in the warm-up is not retried every round.
        return;
    }

    GC.Collect();
    GC.WaitForPendingFinalizers();
    GC.Collect();
    try
    {
        TimeSpan? unheld = null;
        if (proxy is not null && record)
        {
            // The same run with the chunks not held: what the relay, the client and the server cost without the delay.
            proxy.Delay = TimeSpan.Zero;
            try
            {
                var baseline = await result.Client.RunAsync(result.Workload, port, messages, options.TimeLimit, stop.Token);
                unheld = baseline.Elapsed * ((double)messages / baseline.Messages);
            }
            finally
            {
                proxy.Delay = TimeSpan.FromMilliseconds(options.RttMs);
            }
        }

        var countersBefore = proxy?.Snapshot() ?? default;
        var measurement = await result.Client.RunAsync(result.Workload, port, messages, options.TimeLimit, stop.Token);
        var connections = proxy is null ? string.Empty : $", {proxy.Snapshot().Connections - countersBefore.Connections} connection(s)";
        if (record)
        {
            result.Runs.Add(measurement);
            if (proxy is not null)
            {
                result.Unheld.Add(unheld!.Value * ((double)measurement.Messages / messages));
                result.Holds.Add(TimeSpan.FromMilliseconds(options.RttMs) + proxy.Snapshot().MeanLatenessSince(countersBefore));
            }
        }

        if (options.Verbose)
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"   {(record ? "run   " : "warmup")} {result.Client.Name,-24} {measurement.Messages,6} msgs {measurement.Elapsed.TotalMilliseconds,9:0.0} ms {measurement.Messages / measurement.Elapsed.TotalSeconds,9:N0} msgs/s {(measurement.AllocatedBytes < 0 ? "—" : (measurement.AllocatedBytes / (double)measurement.Messages).ToString("N0", CultureInfo.InvariantCulture)),9} B/msg {measurement.Cpu.TotalMicroseconds / measurement.Messages,7:N0} µs CPU/msg{connections}"));
        }
    }
    catch (Exception ex) when (ex is not OperationCanceledException || !stop.IsCancellationRequested)
    {
        result.Failure = $"{ex.GetType().Name}: {ex.Message}";
        Console.Error.WriteLine($"   {result.Client.Name} failed: {result.Failure}");
    }
}

// Process-wide knobs that change where the CPU time goes (the thread pool's idle spinning, the socket completion hop);
// shown so that a report says which configuration it measured.
static string RuntimeSettings()
{
    static string Variable(string name) => $"{name}={Environment.GetEnvironmentVariable(name) ?? "(unset)"}";
    return string.Join(", ",
        Variable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"),
        Variable("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"),
        $"{(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")} GC");
}

static string LoadAverage()
{
    try
    {
        return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
    }
    catch (IOException)
    {
        return "?";
    }
}

static string CpuModel()
{
    try
    {
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown CPU" : line[(line.IndexOf(':', StringComparison.Ordinal) + 1)..].Trim();
    }
    catch (IOException)
    {
        return "unknown CPU";
    }
}
