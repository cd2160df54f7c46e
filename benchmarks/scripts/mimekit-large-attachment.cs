// Issue #14, acceptance 2: a MimeMessage with a 50 MiB attachment (generated as it is read: never in memory) sent with
// MailPipe.MimeKit's SendAsync(MimeMessage); reports the peak of the managed heap during the send above where it stood
// before (target < 4 MiB), the managed allocations and the growth of the peak working set. Usage:
//   dotnet run -c Release benchmarks/scripts/mimekit-large-attachment.cs -- PORT [WARMUP_MESSAGES] [SIZE_MIB]
// Against a sink that stores nothing, e.g. one started for it (as root; stop it by its PID afterwards):
//   /usr/sbin/smtp-sink -u nobody 127.0.0.1:2530 1024 & echo $! > /tmp/sink.pid
// (the shared smtp-sink of build/servers on 2528 works too, but keeps a dump of every message).
//
// How the peak is measured: a dedicated thread samples GC.GetTotalMemory(false) (the managed heap in use, garbage not
// yet collected included) every millisecond during the send, and the report gives the highest sample above the
// baseline taken after a full collection just before the send. The heap can only grow by what is allocated, so the
// managed allocations during the send are an upper bound of that growth too. Warm-ups as in large-message.cs.
#:project ../../src/MailPipe.MimeKit/MailPipe.MimeKit.csproj
using System.Diagnostics;
using MailPipe;
using MimeKit;

var port = int.Parse(args[0]);
var warmUps = args.Length > 1 ? int.Parse(args[1]) : 3;
var size = (args.Length > 2 ? long.Parse(args[2]) : 50) * 1024 * 1024;

await using var session = new AsyncSmtpSession(new SmtpSessionOptions { DataTerminationTimeout = TimeSpan.FromMinutes(5) });
await session.ConnectAsync("127.0.0.1", port);
await session.EhloAsync("client.example.test");
for (var i = 0; i < warmUps; i++)
{
    await session.SendAsync(Message(8 * 1024 * 1024));
    await Task.Delay(300);
}

var message = Message(size);
GC.Collect();
GC.WaitForPendingFinalizers();
GC.Collect();
var baseline = GC.GetTotalMemory(forceFullCollection: true);
var gen0Before = GC.CollectionCount(0);
var process = Process.GetCurrentProcess();
var peakReset = TryResetPeak();
process.Refresh();
var peakWorkingSetBefore = process.PeakWorkingSet64;
long peakHeap = baseline;
var sampling = true;
var sampler = new Thread(() =>
{
    while (Volatile.Read(ref sampling))
    {
        var now = GC.GetTotalMemory(false);
        if (now > peakHeap)
        {
            peakHeap = now;
        }

        Thread.Sleep(1);
    }
}) { IsBackground = true, Priority = ThreadPriority.Highest };
sampler.Start();
var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
var stopwatch = Stopwatch.StartNew();
var result = await session.SendAsync(message);
stopwatch.Stop();
var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
Volatile.Write(ref sampling, false);
sampler.Join();
process.Refresh();
var peakWorkingSetAfter = process.PeakWorkingSet64;

const double MiB = 1024 * 1024;
Console.WriteLine($"{(session.Capabilities.SupportsChunking ? "BDAT" : "DATA")} MimeMessage with a {size / MiB:F0} MiB attachment (base64: {size * 4 / 3 / MiB:F0} MiB of data) after {warmUps} warm-up message(s): {result.Outcome}, {result.FinalReply}");
Console.WriteLine($"  {size / stopwatch.Elapsed.TotalSeconds / 1e6:F0} MB/s of attachment; {GC.CollectionCount(0) - gen0Before} gen0 collections");
Console.WriteLine($"  peak managed heap during the send: {(peakHeap - baseline) / MiB:F2} MiB above the {baseline / MiB:F2} MiB before (target < 4 MiB)");
Console.WriteLine($"  managed allocations during the send: {allocated / MiB:F2} MiB ({allocated / (double)size * 1024:F1} B per KiB of attachment)");
Console.WriteLine($"  growth of the peak working set{(peakReset ? string.Empty : " (peak not reset)")}: {(peakWorkingSetAfter - peakWorkingSetBefore) / MiB:F2} MiB");
return result.Outcome == SmtpSendOutcome.Accepted && peakHeap - baseline < 4 * MiB ? 0 : 1;

static MimeMessage Message(long attachmentSize)
{
    var message = new MimeMessage();
    message.From.Add(MailboxAddress.Parse("sender@example.test"));
    message.To.Add(MailboxAddress.Parse("rcpt@example.test"));
    message.Subject = "50 MiB attachment";
    var attachment = new MimePart("application", "octet-stream")
    {
        Content = new MimeContent(new GeneratedStream(attachmentSize)),
        ContentTransferEncoding = ContentEncoding.Base64,
        FileName = "large.bin",
    };
    message.Body = new Multipart("mixed") { new TextPart("plain") { Text = "A large attachment follows." }, attachment };
    return message;
}

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

/// <summary>Pseudo-random bytes generated as they are read (each a function of its position, so the stream can seek, as MimeContent requires): the attachment never exists in memory.</summary>
internal sealed class GeneratedStream(long length) : Stream
{
    private long _position;

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => length;

    public override long Position { get => _position; set => _position = Math.Clamp(value, 0, length); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var count = (int)Math.Min(buffer.Length, length - _position);
        for (var i = 0; i < count; i++)
        {
            buffer[i] = (byte)((uint)(_position + i) * 0x9E3779B1u >> 24);
        }

        _position += count;
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => Position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => length + offset,
    };

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
