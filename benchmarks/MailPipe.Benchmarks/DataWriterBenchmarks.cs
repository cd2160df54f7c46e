using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using MailKit.Net.Smtp;
using MimeKit.IO.Filters;

namespace MailPipe.Benchmarks;

/// <summary>
/// Message-data transform (dot-stuffing + CRLF normalisation), issue #5 target 6. One operation = the whole input.
/// Baseline: <see cref="Span{T}.CopyTo"/> of the same bytes (memcpy). "GB/s (input)" is input bytes over Mean.
/// </summary>
/// <remarks>
/// MailKit's <see cref="SmtpDataFilter"/> only dot-stuffs (MailKit converts line ends in a separate filter when it
/// writes a message), so on LF-only input it does less work than MailPipe and its output is not valid SMTP data.
/// It is called through <see cref="IMimeFilter.Filter(byte[], int, int, out int, out int)"/> on the whole input,
/// which suits it best (in SmtpClient it sees 4 KiB writes); its output buffer is grown once, then reused.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class DataWriterBenchmarks
{
    private byte[] _input = [];
    private byte[] _destination = [];
    private ArrayBufferWriter<byte> _writer = null!;
    private readonly SmtpDataEncoder _encoder = new();
    private readonly IMimeFilter _mailKitFilter = new SmtpDataFilter();

    [Params(DataInput.TypicalCrlf, DataInput.LfOnly, DataInput.AllDots, DataInput.Typical64MiB)]
    public DataInput Input { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _input = TextCorpus.Create(Input);
        _destination = new byte[_input.Length * 2];
        _writer = new ArrayBufferWriter<byte>((_input.Length * 2) + 16384);

        // The first call grows MailKit's output buffer; after it, the filter reuses it.
        _mailKitFilter.Filter(_input, 0, _input.Length, out _, out _);
        _mailKitFilter.Reset();
        CheckOutputs();
    }

    [Benchmark(Baseline = true, Description = "Span.CopyTo (memcpy)")]
    public int CopyTo()
    {
        _input.AsSpan().CopyTo(_destination);
        return _input.Length;
    }

    [Benchmark(Description = "MailPipe SmtpDataEncoder.Transform")]
    public int MailPipe_Transform()
    {
        _encoder.Reset();
        return _encoder.Transform(_input, _destination);
    }

    /// <summary>The session's path: 32 KiB pieces, each into a span reserved from an <see cref="IBufferWriter{T}"/>, then the end-of-data line.</summary>
    [Benchmark(Description = "MailPipe SmtpDataEncoder.Write(IBufferWriter)+Complete")]
    public int MailPipe_WriteToBufferWriter()
    {
        _writer.ResetWrittenCount();
        _encoder.Write(_input, _writer);
        _encoder.Complete(_writer);
        return _writer.WrittenCount;
    }

    [Benchmark(Description = "MailKit SmtpDataFilter")]
    public int MailKit_SmtpDataFilter()
    {
        _mailKitFilter.Reset();
        var output = _mailKitFilter.Filter(_input, 0, _input.Length, out _, out var length);
        return output.Length + length;
    }

    /// <summary>Fails the run if the MailPipe and MailKit outputs disagree where they should agree (CRLF input).</summary>
    private void CheckOutputs()
    {
        _encoder.Reset();
        var written = _encoder.Transform(_input, _destination);
        var mailPipe = _destination.AsSpan(0, written);
        var mailKit = _mailKitFilter.Filter(_input, 0, _input.Length, out var index, out var length).AsSpan(index, length);
        _mailKitFilter.Reset();
        if (Input != DataInput.LfOnly && !mailPipe.SequenceEqual(mailKit))
        {
            throw new InvalidOperationException($"MailPipe and MailKit disagree on {Input}: {written} vs {length} bytes.");
        }

        if (mailPipe.IndexOf("\n.\r\n"u8) >= 0 || mailPipe.Length <= _input.Length)
        {
            throw new InvalidOperationException($"Unexpected MailPipe output for {Input}.");
        }
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new ThroughputColumn());
        }
    }
}
