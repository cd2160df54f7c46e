// Issue #5, target 3b: stream a 100 MiB message from a generated Stream (never in memory) and report the growth of the
// process's peak working set during that send, and the managed allocations. Usage (smtp-sink or Postfix running):
//   dotnet run -c Release benchmarks/scripts/large-message.cs -- PORT [WARMUP_MESSAGES] [SIZE_MIB]
// DATA against smtp-sink (build/servers/smtp-sink-up.sh: 2528); BDAT against a server offering CHUNKING, e.g. Postfix
// 2525, whose 10 MiB limit refuses the message at its end: the streaming is measured all the same.
//
// Why warm-up messages, with pauses: tiered compilation re-compiles the hot path (encoder, copy loop) in the background
// during the first large messages, and the JIT's native arena (≈ 4 MiB here) then shows up in the working set. That is a
// one-time cost of the process, not of streaming, so the measured send starts once the JIT is done (0 = measure cold).
// Why clear_refs: on Linux, writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current resident set, so
// the peak after the send is the peak *during* the send rather than whatever the warm-up reached.
#:project ../../src/MailPipe/MailPipe.csproj
using System.Diagnostics;
using MailPipe;

var port = int.Parse(args[0]);
var warmUps = args.Length > 1 ? int.Parse(args[1]) : 5;
var size = (args.Length > 2 ? long.Parse(args[2]) : 100) * 1024 * 1024;
var envelope = new SmtpEnvelope("sender@example.test", "rcpt@example.test");

await using var session = new AsyncSmtpSession(new SmtpSessionOptions { DataTerminationTimeout = TimeSpan.FromMinutes(5) });
await session.ConnectAsync("127.0.0.1", port);
await session.EhloAsync("client.example.test");
for (var i = 0; i < warmUps; i++)
{
    await session.SendAsync(envelope, new TextStream(20_000_000));
    await Task.Delay(300);
}

GC.Collect();
GC.WaitForPendingFinalizers();
GC.Collect();
var process = Process.GetCurrentProcess();
var peakReset = TryResetPeak();
process.Refresh();
var workingSetBefore = process.WorkingSet64;
var peakBefore = process.PeakWorkingSet64;
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var stopwatch = Stopwatch.StartNew();
var result = await session.SendAsync(envelope, new TextStream(size));
stopwatch.Stop();
process.Refresh();
var peakAfter = process.PeakWorkingSet64;
var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

const double MiB = 1024 * 1024;
Console.WriteLine($"{(session.Capabilities.SupportsChunking ? "BDAT" : "DATA")} {size / MiB:F0} MiB after {warmUps} warm-up message(s): {result.Outcome}, {result.FinalReply}");
Console.WriteLine($"  {size / stopwatch.Elapsed.TotalSeconds / 1e6:F0} MB/s; managed allocations during the send {allocated / MiB:F2} MiB");
Console.WriteLine($"  working set before {workingSetBefore / MiB:F1} MiB, peak {(peakReset ? "reset to it" : "before")} {peakBefore / MiB:F1} MiB, peak after {peakAfter / MiB:F1} MiB");
Console.WriteLine($"  growth of the peak working set: {(peakAfter - peakBefore) / MiB:F2} MiB (target < 4 MiB)");

static bool TryResetPeak()
{
    try
    {
        File.WriteAllText("/proc/self/clear_refs", "5");
        return true;
    }
    catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
    {
        return false;
    }
}

/// <summary>Plain-text lines, generated as they are read: the message never exists in memory.</summary>
internal sealed class TextStream(long length) : Stream
{
    private static readonly byte[] Line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n"u8.ToArray();
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _position; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var total = (int)Math.Min(buffer.Length, length - _position);
        var written = 0;
        while (written < total)
        {
            var lineOffset = (int)((_position + written) % Line.Length);
            var run = Math.Min(Line.Length - lineOffset, total - written);
            Line.AsSpan(lineOffset, run).CopyTo(buffer[written..]);
            written += run;
        }

        _position += total;
        return total;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
