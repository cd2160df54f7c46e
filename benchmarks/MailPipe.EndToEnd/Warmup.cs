using System.Diagnostics;
using System.Runtime;

namespace MailPipe.EndToEnd;

/// <summary>
/// The warm-up of a client before its measured rounds (not recorded). By default one run of up to 50 messages: the
/// first calls' JIT and the connection's code paths. With the environment variable <c>MAILPIPE_BENCH_WARMUP=jit</c>,
/// then runs of up to 2,000 messages until two runs in a row compile no new method (<see cref="JitInfo.GetCompiledMethodCount"/>),
/// at most 30 s: the tiered JIT promotes hot methods (instrumented, then optimized with dynamic PGO) on a background
/// thread over seconds, and that thread's CPU time would otherwise land in the first measured runs, more of it for a
/// client with more methods. Use it with <c>DOTNET_TC_CallCountingDelayMs=0</c>: by default the runtime waits for a
/// pause in new tier-0 compilations (100 ms, ten times that on one CPU) before it even counts calls, so the count can
/// stand still for seconds while the hot methods still run unoptimized. <c>benchmarks/scripts/ab-endtoend.sh</c> sets
/// both, and puts this file into both commits' harness.
/// </summary>
internal static class Warmup
{
    private const int FirstRun = 50;
    private const int SteadyRun = 2_000;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary>Warms a client up with <paramref name="run"/> (messages → one unrecorded run) until it is steady, or it failed.</summary>
    public static async Task RunAsync(Func<int, Task> run, int messages, Func<bool> failed)
    {
        await run(Math.Min(messages, FirstRun));
        if (Environment.GetEnvironmentVariable("MAILPIPE_BENCH_WARMUP") != "jit")
        {
            return;
        }

        var started = Stopwatch.GetTimestamp();
        var quiet = 0;
        while (quiet < 2 && !failed() && Stopwatch.GetElapsedTime(started) < Limit)
        {
            var compiled = JitInfo.GetCompiledMethodCount();
            await run(Math.Min(messages, SteadyRun));
            quiet = JitInfo.GetCompiledMethodCount() == compiled ? quiet + 1 : 0;
        }

        Console.Error.WriteLine($"   warm-up until the JIT is quiet: {Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s, {JitInfo.GetCompiledMethodCount()} methods compiled in all");
    }
}
