using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace MailPipe.Benchmarks;

/// <summary>
/// The command writer: MAIL FROM / RCPT TO lines into an <see cref="ArrayBufferWriter{T}"/> that is reset per operation
/// (no growth after the first call). The baseline copies the finished line: the floor for any writer.
/// </summary>
[MemoryDiagnoser]
public class CommandWriterBenchmarks
{
    private const string Sender = "sender@example.test";
    private const string Recipient = "<recipient.name@example.test>";
    private const string MailParameters = "SIZE=1024 BODY=8BITMIME";

    private static readonly byte[] MailFromLine = "MAIL FROM:<sender@example.test>\r\n"u8.ToArray();

    private readonly ArrayBufferWriter<byte> _output = new(1024);

    [GlobalSetup]
    public void Setup()
    {
        SmtpCommandWriter.WritePathCommand(_output, "MAIL FROM:"u8, Sender, null);
        if (!_output.WrittenSpan.SequenceEqual(MailFromLine))
        {
            throw new InvalidOperationException("The command writer wrote an unexpected line.");
        }
    }

    [Benchmark(Baseline = true, Description = "copy of the finished MAIL line (floor)")]
    public int MailFrom_CopyPrebuilt()
    {
        _output.ResetWrittenCount();
        MailFromLine.CopyTo(_output.GetSpan(MailFromLine.Length));
        _output.Advance(MailFromLine.Length);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "MAIL FROM:<path>")]
    public int MailFrom()
    {
        _output.ResetWrittenCount();
        SmtpCommandWriter.WritePathCommand(_output, "MAIL FROM:"u8, Sender, null);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "MAIL FROM:<path> SIZE= BODY=")]
    public int MailFrom_WithParameters()
    {
        _output.ResetWrittenCount();
        SmtpCommandWriter.WritePathCommand(_output, "MAIL FROM:"u8, Sender, MailParameters);
        return _output.WrittenCount;
    }

    [Benchmark(Description = "RCPT TO:<path> (brackets given)")]
    public int RcptTo()
    {
        _output.ResetWrittenCount();
        SmtpCommandWriter.WritePathCommand(_output, "RCPT TO:"u8, Recipient, null);
        return _output.WrittenCount;
    }

    /// <summary>
    /// What <c>MailFromAsync</c> does before its flush: it validates the path and parameters (CR/LF/NUL, brackets),
    /// then <c>WritePathCommand</c> checks them again and writes. The other methods include that second check only.
    /// </summary>
    [Benchmark(Description = "MAIL FROM validated + written (as MailFromAsync)")]
    public int MailFrom_ValidatedAndWritten()
    {
        SmtpCommandWriter.ValidatePath(Sender, "reversePath");
        SmtpCommandWriter.ValidateArgument(MailParameters, "parameters");
        _output.ResetWrittenCount();
        SmtpCommandWriter.WritePathCommand(_output, "MAIL FROM:"u8, Sender, MailParameters);
        return _output.WrittenCount;
    }
}
