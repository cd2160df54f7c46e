// Issue #5, target 3b: stream a 100 MiB message from a generated Stream (never in memory) and report the growth of the
// process's peak working set and its managed allocations. Usage (smtp-sink or Postfix from build/servers running):
//   dotnet run -c Release benchmarks/scripts/large-message.cs -- PORT [WARMUP_BYTES]
// (DATA against smtp-sink 2528; BDAT against a server offering CHUNKING, e.g. Postfix 2525, whose 10 MiB limit refuses it
// at the end: the streaming is measured all the same).
#:project ../../src/MailPipe/MailPipe.csproj
#:property TreatWarningsAsErrors=false
using MailPipe;
using System.Diagnostics;
var size = 100L * 1024 * 1024;
await using var s = new AsyncSmtpSession(new SmtpSessionOptions { DataTerminationTimeout = TimeSpan.FromMinutes(5) });
await s.ConnectAsync("127.0.0.1", int.Parse(args[0])); await s.EhloAsync("c.example.test");
// warm up the code paths with a small message
await s.SendAsync(new SmtpEnvelope("s@example.test", "r@example.test"), new TextStream(args.Length > 1 ? long.Parse(args[1]) : 20_000_000));
GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
var p = Process.GetCurrentProcess(); p.Refresh(); var before = p.PeakWorkingSet64; var ws0 = p.WorkingSet64;
var sw = Stopwatch.StartNew();
var r = await s.SendAsync(new SmtpEnvelope("s@example.test", "r@example.test"), new TextStream(size));
sw.Stop(); p.Refresh();
Console.WriteLine($"alloc {GC.GetTotalAllocatedBytes(true) / 1048576.0:F1} MiB total; "); Console.WriteLine($"{(s.Capabilities.SupportsChunking ? "bdat" : "data")} {r.Outcome} {r.FinalReply}: {size / sw.Elapsed.TotalSeconds / 1e6:F0} MB/s; working set before {ws0 / 1048576.0:F1} MiB, peak before {before / 1048576.0:F1} MiB, peak after {p.PeakWorkingSet64 / 1048576.0:F1} MiB, growth of peak {(p.PeakWorkingSet64 - before) / 1048576.0:F2} MiB");
sealed class TextStream(long length) : Stream {
  long _pos; static readonly byte[] Line = "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghij\r\n"u8.ToArray();
  public override bool CanRead => true; public override bool CanSeek => false; public override bool CanWrite => false;
  public override long Length => throw new NotSupportedException(); public override long Position { get => _pos; set => throw new NotSupportedException(); }
  public override void Flush() {}
  public override int Read(byte[] b, int o, int c) { var n = (int)Math.Min(c, length - _pos); for (int i = 0; i < n; i++) b[o + i] = Line[(_pos + i) % Line.Length]; _pos += n; return n; }
  public override long Seek(long a, SeekOrigin b) => throw new NotSupportedException(); public override void SetLength(long v) => throw new NotSupportedException();
  public override void Write(byte[] b, int o, int c) => throw new NotSupportedException(); }
