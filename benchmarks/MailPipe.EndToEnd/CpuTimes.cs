using System.Runtime.InteropServices;

namespace MailPipe.EndToEnd;

/// <summary>
/// CPU time (user + system) from getrusage(2): of this process (the same quantity as
/// <c>Process.TotalProcessorTime</c>, which on Linux reads /proc in 10 ms clock ticks, at microsecond resolution),
/// and of its waited-for children (the smtp-source runs).
/// </summary>
internal static partial class CpuTimes
{
    private const int RusageSelf = 0;
    private const int RusageChildren = -1;

    /// <summary>CPU time of this process, every thread, so far.</summary>
    public static TimeSpan Self() => Get(RusageSelf);

    /// <summary>CPU time of every child that has exited and been waited for, so far.</summary>
    public static TimeSpan Children() => Get(RusageChildren);

    private static TimeSpan Get(int who)
    {
        if (GetRusage(who, out var usage) != 0)
        {
            throw new InvalidOperationException($"getrusage failed: errno {Marshal.GetLastPInvokeError()}.");
        }

        var microseconds = (usage.UserSeconds * 1_000_000) + usage.UserMicroseconds + (usage.SystemSeconds * 1_000_000) + usage.SystemMicroseconds;
        return TimeSpan.FromMicroseconds(microseconds);
    }

    [LibraryImport("libc", EntryPoint = "getrusage", SetLastError = true)]
    private static partial int GetRusage(int who, out RUsage usage);

    /// <summary>struct rusage on 64-bit Linux: two timevals, then 14 longs (144 bytes).</summary>
    [StructLayout(LayoutKind.Sequential, Size = 144)]
    private struct RUsage
    {
        public long UserSeconds;
        public long UserMicroseconds;
        public long SystemSeconds;
        public long SystemMicroseconds;
    }
}
