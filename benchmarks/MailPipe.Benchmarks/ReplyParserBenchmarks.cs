using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace MailPipe.Benchmarks;

/// <summary>
/// The reply parser (issue #5, target 7: no allocation beyond the returned <see cref="SmtpReply"/>; a 10-line EHLO
/// reply in ≤ 1 µs). One operation = one complete reply. In each category the baseline builds the same
/// <see cref="SmtpReply"/> from bytes already split into lines (UTF-8 decode + line array + reply object): the
/// allocation a parser cannot avoid. "Alloc Ratio" above 1 is what the parser adds.
/// </summary>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class ReplyParserBenchmarks
{
    /// <summary>Postfix's reply to the end of data.</summary>
    private static readonly byte[] OneLine = "250 2.0.0 Ok: queued as 3FD98B1E0F1\r\n"u8.ToArray();

    /// <summary>A 10-line EHLO reply, as Postfix sends it (minus AUTH and SMTPUTF8 to make it 10 lines).</summary>
    private static readonly byte[] Ehlo = Encoding.ASCII.GetBytes(
        "250-mail.example.test\r\n" +
        "250-PIPELINING\r\n" +
        "250-SIZE 10485760\r\n" +
        "250-VRFY\r\n" +
        "250-ETRN\r\n" +
        "250-STARTTLS\r\n" +
        "250-ENHANCEDSTATUSCODES\r\n" +
        "250-8BITMIME\r\n" +
        "250-DSN\r\n" +
        "250 CHUNKING\r\n");

    private readonly SmtpReplyParser _parser = new(SmtpProtocolLimits.Default);
    private ReadOnlySequence<byte> _oneLine;
    private ReadOnlySequence<byte> _ehlo;
    private ReadOnlySequence<byte> _ehloSegmented;
    private byte[][] _oneLineTexts = [];
    private byte[][] _ehloTexts = [];
    private SmtpReply _ehloReply = null!;

    [GlobalSetup]
    public void Setup()
    {
        _oneLine = new ReadOnlySequence<byte>(OneLine);
        _ehlo = new ReadOnlySequence<byte>(Ehlo);

        // 37-byte segments: the split points fall inside codes, texts and CRLFs (7 segments for 180 bytes).
        _ehloSegmented = SegmentedSequence.Create(Ehlo, 37);
        _oneLineTexts = TextsOf(OneLine);
        _ehloTexts = TextsOf(Ehlo);
        _ehloReply = Parse(_ehlo);
        if (_ehloReply.Lines.Count != 10 || Parse(_ehloSegmented).Lines.Count != 10 || Parse(_oneLine).Text != "Ok: queued as 3FD98B1E0F1")
        {
            throw new InvalidOperationException("The parser did not return the expected replies.");
        }
    }

    // ---- one-line reply ----

    [Benchmark(Baseline = true, Description = "OneLine: SmtpReply only (floor)")]
    [BenchmarkCategory("OneLine")]
    public SmtpReply OneLine_ReplyObjectOnly() => BuildReply(250, _oneLineTexts);

    [Benchmark(Description = "OneLine: parser")]
    [BenchmarkCategory("OneLine")]
    public SmtpReply OneLine_Parse() => Parse(_oneLine);

    // ---- 10-line EHLO reply ----

    [Benchmark(Baseline = true, Description = "Ehlo10: SmtpReply only (floor)")]
    [BenchmarkCategory("Ehlo10")]
    public SmtpReply Ehlo_ReplyObjectOnly() => BuildReply(250, _ehloTexts);

    [Benchmark(Description = "Ehlo10: parser, one segment")]
    [BenchmarkCategory("Ehlo10")]
    public SmtpReply Ehlo_Parse() => Parse(_ehlo);

    [Benchmark(Description = "Ehlo10: parser, 37-byte segments")]
    [BenchmarkCategory("Ehlo10")]
    public SmtpReply Ehlo_ParseSegmented() => Parse(_ehloSegmented);

    /// <summary>Per connection, not per reply: what <c>EhloAsync</c> adds after parsing.</summary>
    [Benchmark(Description = "Ehlo10: SmtpCapabilities.FromEhloReply")]
    [BenchmarkCategory("Ehlo10")]
    public SmtpCapabilities Ehlo_Capabilities() => SmtpCapabilities.FromEhloReply(_ehloReply);

    private SmtpReply Parse(ReadOnlySequence<byte> input)
    {
        var reader = new SequenceReader<byte>(input);
        if (!_parser.TryParse(ref reader, out var reply))
        {
            throw new InvalidOperationException("Incomplete reply.");
        }

        return reply;
    }

    /// <summary>What any parser must allocate for this reply: the decoded lines, their array and the reply object.</summary>
    private static SmtpReply BuildReply(int code, byte[][] texts)
    {
        var lines = new string[texts.Length];
        for (var i = 0; i < texts.Length; i++)
        {
            lines[i] = texts[i].Length == 0 ? string.Empty : Encoding.UTF8.GetString(texts[i]);
        }

        return SmtpReply.FromParsedLines(code, lines);
    }

    /// <summary>The text of each line (after "250-"/"250 ", without CRLF).</summary>
    private static byte[][] TextsOf(byte[] reply)
    {
        var text = Encoding.ASCII.GetString(reply);
        return [.. text.Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Select(line => Encoding.ASCII.GetBytes(line[4..]))];
    }
}
