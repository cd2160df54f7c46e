using System.Buffers;
using System.Text;
using CsCheck;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Robustness;

/// <summary>
/// Property-based tests (CsCheck, seeded so that a failure reproduces): the reply parser does not care how the bytes
/// are segmented; the data writer's output, un-stuffed, is the normalised input and never holds a bare CR, a bare LF
/// or an early end of data; the command writer either refuses before writing or writes one line that round-trips;
/// BDAT sizes equal the bytes sent.
/// </summary>
public class PropertyTests
{
    /// <summary>Iterations per property in CI; <c>MAILPIPE_PROPERTY_ITER</c> raises it for a longer local run.</summary>
    internal static long Iterations => long.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_PROPERTY_ITER"), out var n) ? n : 300;

    private const string Seed = "0000000000017";

    // ---- Reply parser: segmentation invariance ----

    private static readonly Gen<string> ReplyText = Gen.String[Gen.Char["abcXYZ 0123-.=<>\u00e9\t"], 0, 40];

    /// <summary>A reply (code, lines) and its wire form; sometimes with blank lines before it and bare-LF line ends.</summary>
    private static readonly Gen<(int Code, string[] Lines, string Wire)> Reply =
        Gen.Select(Gen.Int[200, 599], ReplyText.Array[1, 5], Gen.Int[0, 2], Gen.Bool, (code, lines, blanks, bareLf) =>
        {
            var eol = bareLf ? "\n" : "\r\n";
            var wire = new StringBuilder();
            wire.Append(string.Concat(Enumerable.Repeat(eol, blanks)));
            for (var i = 0; i < lines.Length; i++)
            {
                wire.Append(code).Append(i == lines.Length - 1 ? ' ' : '-').Append(lines[i]).Append(eol);
            }

            // A line "250 " with empty text is parsed as text "" just like "250": both are written with the separator.
            return (code, lines, wire.ToString());
        });

    private static readonly Gen<(int Code, string[] Lines, string Wire)[]> Replies = Reply.Array[1, 6];

    /// <summary>Feeds the segments one at a time, as a PipeReader would, keeping what the parser did not consume.</summary>
    internal static List<SmtpReply> ParseFed(IEnumerable<byte[]> segments, SmtpProtocolLimits? limits = null)
    {
        var parser = new SmtpReplyParser(limits ?? SmtpProtocolLimits.Default);
        var pending = new List<byte[]>();
        var replies = new List<SmtpReply>();
        foreach (var segment in segments)
        {
            pending.Add(segment);
            var sequence = ReadOnlySequenceFactory.Create([.. pending]);
            var reader = new SequenceReader<byte>(sequence);
            while (parser.TryParse(ref reader, out var reply))
            {
                replies.Add(reply);
            }

            pending = [];
            foreach (var left in sequence.Slice(reader.Consumed))
            {
                pending.Add(left.ToArray());
            }
        }

        return replies;
    }

    private static string Show(IEnumerable<SmtpReply> replies) => string.Join(" | ", replies.Select(r => $"{r.Code}:{string.Join("/", r.Lines)}"));

    [Fact]
    public void The_reply_parser_yields_the_same_replies_however_the_bytes_are_segmented()
    {
        Gen.Select(Replies, Gen.Int[1, 64].Array[1, 40]).Sample((replies, sizes) =>
        {
            var bytes = Encoding.UTF8.GetBytes(string.Concat(replies.Select(r => r.Wire)));
            var expected = string.Join(" | ", replies.Select(r => $"{r.Code}:{string.Join("/", r.Lines)}"));

            Show(ParseFed([bytes])).Should().Be(expected, "whole");
            Show(ParseFed(bytes.Select(b => new[] { b }))).Should().Be(expected, "one byte per segment");
            Show(ParseFed(Chunks(bytes, sizes))).Should().Be(expected, "random segmentation");
            for (var split = 1; split < bytes.Length; split += Math.Max(1, bytes.Length / 16))
            {
                Show(ParseFed([bytes[..split], bytes[split..]])).Should().Be(expected, $"split at {split}");
            }
        }, seed: Seed, iter: Iterations, threads: 1);
    }

    [Fact]
    public void Every_two_way_split_of_a_pipelined_group_parses_the_same()
    {
        var bytes = "\r\n250-mail.example.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n\r\n250 2.1.0 Ok\n354 go\r\n"u8.ToArray();
        var expected = Show(ParseFed([bytes]));
        expected.Should().Be("250:mail.example.test/PIPELINING/CHUNKING | 250:2.1.0 Ok | 354:go");
        for (var split = 0; split <= bytes.Length; split++)
        {
            Show(ParseFed([bytes[..split], bytes[split..]])).Should().Be(expected);
        }
    }

    internal static IEnumerable<byte[]> Chunks(byte[] bytes, int[] sizes)
    {
        var at = 0;
        for (var i = 0; at < bytes.Length; i++)
        {
            var size = Math.Min(sizes[i % sizes.Length], bytes.Length - at);
            yield return bytes[at..(at + size)];
            at += size;
        }
    }

    // ---- Data writer ----

    private static readonly Gen<byte[]> Content = Gen.OneOf("\r", "\n", "\r\n", ".", "..", "a", "bc", "\n.\n", "\r.\r", "\n.\r\n", "\r\n.\r\n", "\u00e9").Array[0, 80]
        .Select(parts => Encoding.UTF8.GetBytes(string.Concat(parts)));

    /// <summary>The input with every CRLF, bare CR and bare LF made CRLF, and a final CRLF when the input does not end with a line end.</summary>
    internal static byte[] Normalise(byte[] input)
    {
        var output = new List<byte>(input.Length + 16);
        for (var i = 0; i < input.Length; i++)
        {
            if (input[i] == '\r')
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
                if (i + 1 < input.Length && input[i + 1] == '\n')
                {
                    i++;
                }
            }
            else if (input[i] == '\n')
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
            }
            else
            {
                output.Add(input[i]);
            }
        }

        if (output.Count > 0 && output[^1] != '\n')
        {
            output.Add((byte)'\r');
            output.Add((byte)'\n');
        }

        return [.. output];
    }

    [Fact]
    public void The_data_writer_output_unstuffed_is_the_normalised_input_with_no_bare_CR_or_LF_and_no_early_end()
    {
        Gen.Select(Content, Gen.Int[1, 17].Array[1, 10]).Sample((input, sizes) =>
        {
            var encoder = new SmtpDataEncoder();
            var output = new ArrayBufferWriter<byte>();
            foreach (var chunk in Chunks(input, sizes))
            {
                encoder.Write(chunk, output);
            }

            encoder.Complete(output);
            var wire = output.WrittenSpan.ToArray();
            var text = Encoding.Latin1.GetString(wire);

            text.Should().EndWith(".\r\n");
            for (var i = 0; i < wire.Length; i++)
            {
                if (wire[i] == '\r')
                {
                    (i + 1 < wire.Length && wire[i + 1] == '\n').Should().BeTrue($"no bare CR (at {i})");
                }
                else if (wire[i] == '\n')
                {
                    (i > 0 && wire[i - 1] == '\r').Should().BeTrue($"no bare LF (at {i})");
                }
            }

            var body = text[..^3];
            (body.Length == 0 || body.EndsWith("\r\n", StringComparison.Ordinal)).Should().BeTrue();
            var lines = body.Length == 0 ? [] : body[..^2].Split("\r\n");
            lines.Should().NotContain(".", "a lone dot line inside the data would end it early");
            var unstuffed = string.Concat(lines.Select(l => (l.StartsWith('.') ? l[1..] : l) + "\r\n"));
            Encoding.Latin1.GetBytes(unstuffed).Should().Equal(Normalise(input));
        }, seed: Seed, iter: Iterations, threads: 1);
    }

    // ---- Command writer ----

    private static readonly Gen<string> Argument = Gen.String[Gen.Char["ab@.<> \r\n\0\u00e9\u4e2d:="], 0, 20];

    [Fact]
    public void The_command_writer_refuses_before_writing_or_writes_one_line_whose_argument_round_trips()
    {
        int refused = 0, written = 0;
        Argument.Sample(argument =>
        {
            var output = new ArrayBufferWriter<byte>();
            try
            {
                SmtpCommandWriter.Write(output, "VRFY"u8, argument);
            }
            catch (ArgumentException)
            {
                output.WrittenCount.Should().Be(0, "nothing is written before the refusal");
                argument.IndexOfAny(['\r', '\n', '\0']).Should().BeGreaterThanOrEqualTo(0);
                Interlocked.Increment(ref refused);
                return;
            }

            Interlocked.Increment(ref written);
            var line = Encoding.UTF8.GetString(output.WrittenSpan);
            line.Should().EndWith("\r\n");
            line.IndexOf('\n').Should().Be(line.Length - 1, "exactly one line");
            line.Should().Be("VRFY " + argument + "\r\n", "the argument round-trips");
        }, seed: Seed, iter: Iterations, threads: 1);

        refused.Should().BeGreaterThan(0, "both outcomes occur in every run");
        written.Should().BeGreaterThan(0, "both outcomes occur in every run");
    }

    [Fact]
    public void The_path_command_writer_refuses_before_writing_or_writes_one_line_whose_path_round_trips()
    {
        int refused = 0, written = 0;
        Gen.Select(Argument, Gen.String[Gen.Char["AZ=09 \r\n\0"], 0, 10]).Sample((path, parameters) =>
        {
            var output = new ArrayBufferWriter<byte>();
            try
            {
                SmtpCommandWriter.WritePathCommand(output, "MAIL FROM:"u8, path, parameters);
            }
            catch (ArgumentException)
            {
                output.WrittenCount.Should().Be(0);
                refused++;
                return;
            }

            written++;
            var line = Encoding.UTF8.GetString(output.WrittenSpan);
            line.IndexOf('\n').Should().Be(line.Length - 1);
            line.IndexOf('\0').Should().Be(-1);
            line.Should().StartWith("MAIL FROM:<" + SmtpCommandWriter.StripBrackets(path).ToString() + ">");
        }, seed: Seed, iter: Iterations, threads: 1);

        refused.Should().BeGreaterThan(0);
        written.Should().BeGreaterThan(0);
    }

    // ---- BDAT sizes ----

    [Fact]
    public async Task BDAT_sizes_always_equal_the_bytes_sent()
    {
        var cases = new List<(byte[] Raw, int ChunkSize)>();
        Gen.Select(Content, Gen.Int[1024, 1500]).Sample(c => cases.Add(c), seed: Seed, iter: 12, threads: 1);
        foreach (var (raw, chunkSize) in cases)
        {
            var input = raw.Concat(Enumerable.Repeat((byte)'x', chunkSize * 2 + (raw.Length * 7 % 500))).Concat(raw).ToArray();
            var expected = Normalise(input);
            var chunks = new List<int>();
            var received = new MemoryStream();
            var script = SmtpScript.Parse(
                "S: 220 ready", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250-8BITMIME", "S: 250 CHUNKING",
                "C: MAIL FROM:<a@example.test> BODY=8BITMIME", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok")
                .Do("BDAT chunks", async (server, ct) =>
                {
                    while (true)
                    {
                        var header = Encoding.ASCII.GetString((await server.ReadLineAsync(ct))!);
                        header.Should().MatchRegex(@"^BDAT \d+( LAST)?\r\n$");
                        var parts = header.TrimEnd().Split(' ');
                        var size = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
                        var bytes = await server.ReadExactlyAsync(size, ct);
                        bytes.Length.Should().Be(size);
                        received.Write(bytes);
                        chunks.Add(size);
                        await server.SendAsync("250 Ok\r\n"u8.ToArray(), ct);
                        if (parts.Length == 3)
                        {
                            return;
                        }
                    }
                }).Then("C: NOOP", "S: 250 Ok");
            await using var server = ScriptedSmtpServer.Start(script);
            using var session = new AsyncSmtpSession(new SmtpSessionOptions { ChunkSize = chunkSize });
            await session.ConnectAsync(server.ClientStream).Safe();
            await session.EhloAsync("client.example.test").Safe();

            var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream(input)).Safe();
            await session.NoopAsync().Safe();
            await server.WaitAsync();

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            received.ToArray().Should().Equal(expected, "the chunks carry exactly the normalised content");
            chunks.Sum().Should().Be(expected.Length);
            chunks.SkipLast(1).Should().OnlyContain(size => size >= chunkSize, "chunks are cut at the chunk size");
        }
    }
}
