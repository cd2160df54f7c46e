using System.Buffers;
using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Protocol;

public class SmtpDataEncoderTests
{
    private static readonly byte[] Terminator = "\r\n.\r\n"u8.ToArray();

    /// <summary>
    /// The transform written the slow, obvious way: normalise CRLF, CR and LF to CRLF; double a '.' that starts a line;
    /// add CRLF if the data does not end with one; add ".\r\n".
    /// </summary>
    private static byte[] Reference(byte[] input)
    {
        var normalised = new List<byte>(input.Length * 2);
        for (var i = 0; i < input.Length; i++)
        {
            switch (input[i])
            {
                case (byte)'\r':
                    normalised.Add((byte)'\r');
                    normalised.Add((byte)'\n');
                    if (i + 1 < input.Length && input[i + 1] == (byte)'\n')
                    {
                        i++;
                    }

                    break;
                case (byte)'\n':
                    normalised.Add((byte)'\r');
                    normalised.Add((byte)'\n');
                    break;
                default:
                    normalised.Add(input[i]);
                    break;
            }
        }

        var output = new List<byte>(normalised.Count + 8);
        var lines = SplitCrlf([.. normalised]);
        for (var i = 0; i < lines.Count; i++)
        {
            var line = lines[i];
            if (line.Length > 0 && line[0] == (byte)'.')
            {
                output.Add((byte)'.');
            }

            output.AddRange(line);
            if (i < lines.Count - 1)
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
            }
        }

        if (output.Count > 0 && !EndsWithCrlf(output))
        {
            output.Add((byte)'\r');
            output.Add((byte)'\n');
        }

        output.AddRange(".\r\n"u8.ToArray());
        return [.. output];
    }

    private static List<byte[]> SplitCrlf(byte[] text)
    {
        var lines = new List<byte[]>();
        var start = 0;
        for (var i = 0; i + 1 < text.Length; i++)
        {
            if (text[i] == (byte)'\r' && text[i + 1] == (byte)'\n')
            {
                lines.Add(text[start..i]);
                start = i + 2;
                i++;
            }
        }

        lines.Add(text[start..]);
        return lines;
    }

    private static bool EndsWithCrlf(List<byte> bytes) => bytes.Count >= 2 && bytes[^2] == (byte)'\r' && bytes[^1] == (byte)'\n';

    private static byte[] Encode(IEnumerable<byte[]> chunks)
    {
        var encoder = new SmtpDataEncoder();
        var output = new ArrayBufferWriter<byte>();
        foreach (var chunk in chunks)
        {
            encoder.Write(chunk, output);
        }

        encoder.Complete(output);
        return output.WrittenSpan.ToArray();
    }

    private static byte[] Encode(string text) => Encode([Encoding.UTF8.GetBytes(text)]);

    private static string EncodeText(params string[] chunks) => Encoding.Latin1.GetString(Encode(chunks.Select(Encoding.Latin1.GetBytes)));

    /// <summary>What must hold for any output: no bare CR or LF, and the end-of-data sequence only at the very end.</summary>
    private static void AssertInvariants(byte[] output, string because)
    {
        for (var i = 0; i < output.Length; i++)
        {
            if (output[i] == (byte)'\r')
            {
                (i + 1 < output.Length && output[i + 1] == (byte)'\n').Should().BeTrue($"a CR at {i} is followed by LF ({because})");
            }
            else if (output[i] == (byte)'\n')
            {
                (i > 0 && output[i - 1] == (byte)'\r').Should().BeTrue($"an LF at {i} follows a CR ({because})");
            }
        }

        if (output.Length == 3)
        {
            output.Should().Equal(".\r\n"u8.ToArray(), because);
            return;
        }

        output.AsSpan().IndexOf(Terminator).Should().Be(output.Length - Terminator.Length, $"CRLF.CRLF appears only at the end ({because})");
        output.AsSpan().StartsWith(".\r\n"u8).Should().BeFalse($"the data does not start with a lone-dot line ({because})");
    }

    private static List<byte[]> RandomChunks(Random random, byte[] input)
    {
        var chunks = new List<byte[]>();
        var offset = 0;
        while (offset < input.Length)
        {
            // Mostly small chunks, sometimes empty ones, sometimes everything that is left.
            var size = random.Next(10) switch
            {
                0 => 0,
                1 => input.Length - offset,
                _ => random.Next(1, 8),
            };
            size = Math.Min(size, input.Length - offset);
            chunks.Add(input[offset..(offset + size)]);
            offset += size;
        }

        return chunks;
    }

    private static byte[] RandomInput(Random random, int maxLength)
    {
        ReadOnlySpan<byte> alphabet = "ab .\r\n.\r\n\t\0\u00e9"u8;
        var length = random.Next(maxLength + 1);
        var input = new byte[length];
        for (var i = 0; i < length; i++)
        {
            input[i] = alphabet[random.Next(alphabet.Length)];
        }

        return input;
    }

    [Fact]
    public void Random_inputs_in_random_chunkings_match_the_reference()
    {
        var random = new Random(20240521);
        for (var n = 0; n < 500; n++)
        {
            var input = RandomInput(random, 120);
            var expected = Reference(input);
            var because = $"case {n}, input \"{SmtpScript.Printable(Encoding.Latin1.GetString(input))}\"";

            var whole = Encode([input]);
            whole.Should().Equal(expected, because);
            AssertInvariants(whole, because);

            for (var chunking = 0; chunking < 5; chunking++)
            {
                var chunks = RandomChunks(random, input);
                var encoded = Encode(chunks);
                encoded.Should().Equal(expected, $"{because}, chunks [{string.Join("|", chunks.Select(c => SmtpScript.Printable(Encoding.Latin1.GetString(c))))}]");
            }
        }
    }

    [Fact]
    public void Random_inputs_as_multi_segment_sequences_match_the_reference()
    {
        var random = new Random(7);
        for (var n = 0; n < 500; n++)
        {
            var input = RandomInput(random, 60);
            var sequence = ReadOnlySequenceFactory.Create([.. RandomChunks(random, input)]);
            var encoder = new SmtpDataEncoder();
            var output = new ArrayBufferWriter<byte>();

            encoder.Write(sequence, output);
            encoder.Complete(output);

            output.WrittenSpan.ToArray().Should().Equal(Reference(input), $"case {n}");
        }
    }

    [Fact]
    public void Every_two_chunk_split_of_a_tricky_message_matches_the_reference()
    {
        var input = Encoding.ASCII.GetBytes(".a\r\n..b\r\r\n.\n\r.\r\n.c\n\n.\r");
        var expected = Reference(input);
        for (var split = 0; split <= input.Length; split++)
        {
            Encode([input[..split], input[split..]]).Should().Equal(expected, $"split at {split}");
        }

        Encode(input.Select(b => new[] { b })).Should().Equal(expected, "one byte per chunk");
    }

    [Fact]
    public void Large_random_input_crosses_the_internal_piece_size()
    {
        var random = new Random(99);
        var input = new byte[40_000];
        ReadOnlySpan<byte> alphabet = "abc.\r\n"u8;
        for (var i = 0; i < input.Length; i++)
        {
            input[i] = alphabet[random.Next(alphabet.Length)];
        }

        var encoded = Encode([input]);

        encoded.Should().Equal(Reference(input));
        AssertInvariants(encoded, "large input");
    }

    [Fact]
    public void Lines_of_dots_only_double_up_to_twice_the_input()
    {
        // The worst case for output size: every byte doubles.
        var input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(".\n", 10_000)));

        var encoded = Encode([input]);

        encoded.Should().Equal(Reference(input));
        encoded.Length.Should().Be((input.Length * 2) + 3);
    }

    [Fact]
    public void Empty_message_is_just_the_end_of_data_line()
    {
        EncodeText().Should().Be(".\r\n");
        EncodeText(string.Empty, string.Empty).Should().Be(".\r\n");
    }

    [Theory]
    [InlineData("Subject: x\r\n\r\nbody", "Subject: x\r\n\r\nbody\r\n.\r\n")]
    [InlineData("body\r\n", "body\r\n.\r\n")]
    [InlineData("body\n", "body\r\n.\r\n")]
    [InlineData("body\r", "body\r\n.\r\n")]
    [InlineData("a\nb\rc\r\nd", "a\r\nb\r\nc\r\nd\r\n.\r\n")]
    [InlineData("\r\r", "\r\n\r\n.\r\n")]
    [InlineData("\n\r", "\r\n\r\n.\r\n")]
    [InlineData("\r\n\r\n", "\r\n\r\n.\r\n")]
    public void Line_ends_are_normalised_and_a_final_CRLF_is_added(string input, string expected)
    {
        EncodeText(input).Should().Be(expected);
    }

    [Theory]
    [InlineData(".", "..\r\n.\r\n")]
    [InlineData(".\r\n", "..\r\n.\r\n")]
    [InlineData("a\r\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("..x", "...x\r\n.\r\n")]
    [InlineData("a.b\r\n.c", "a.b\r\n..c\r\n.\r\n")]
    [InlineData("\r\n.", "\r\n..\r\n.\r\n")]
    public void Dots_that_start_a_line_are_doubled(string input, string expected)
    {
        EncodeText(input).Should().Be(expected);
    }

    [Theory]
    [InlineData("a\n.\nb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("a\r.\rb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("a\n.\r\nb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("a\r\n.\nb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("a\r\n.\rb", "a\r\n..\r\nb\r\n.\r\n")]
    [InlineData("\n.\n", "\r\n..\r\n.\r\n")]
    [InlineData("\r.\r", "\r\n..\r\n.\r\n")]
    [InlineData("\r\n.\r\n", "\r\n..\r\n.\r\n")]
    public void Smuggling_sequences_cannot_end_the_data_early(string input, string expected)
    {
        var output = EncodeText(input);

        output.Should().Be(expected);
        AssertInvariants(Encoding.Latin1.GetBytes(output), input);
    }

    [Fact]
    public void CR_at_the_end_of_one_chunk_and_LF_at_the_start_of_the_next_are_one_line_end()
    {
        EncodeText("a\r", "\nb").Should().Be("a\r\nb\r\n.\r\n");
        EncodeText("a\r", string.Empty, "\nb").Should().Be("a\r\nb\r\n.\r\n");
        EncodeText("a\r", "\r", "\n").Should().Be("a\r\n\r\n.\r\n");
    }

    [Fact]
    public void CR_at_the_end_of_a_chunk_followed_by_a_dot_stuffs_the_dot()
    {
        EncodeText("a\r", ".b").Should().Be("a\r\n..b\r\n.\r\n");
        EncodeText("a\r", "\n", ".b").Should().Be("a\r\n..b\r\n.\r\n");
    }

    [Fact]
    public void Dot_as_the_first_byte_of_a_chunk_at_line_start_is_doubled()
    {
        EncodeText("a\r\n", ".b").Should().Be("a\r\n..b\r\n.\r\n");
        EncodeText(".", ".", ".").Should().Be("....\r\n.\r\n");
        EncodeText("a", ".b").Should().Be("a.b\r\n.\r\n");
    }

    [Fact]
    public void Lone_dot_line_is_stuffed()
    {
        EncodeText("one\r\n.\r\ntwo\r\n").Should().Be("one\r\n..\r\ntwo\r\n.\r\n");
        EncodeText("one\r\n", ".", "\r\n", "two").Should().Be("one\r\n..\r\ntwo\r\n.\r\n");
    }

    [Fact]
    public void Message_not_ending_in_a_newline_gets_CRLF_before_the_end_of_data()
    {
        EncodeText("no newline").Should().Be("no newline\r\n.\r\n");
        EncodeText("x\r\n", "no newline").Should().Be("x\r\nno newline\r\n.\r\n");
    }

    [Fact]
    public void Bytes_other_than_CR_LF_and_dot_pass_unchanged()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).Where(b => b is not (byte)'\r' and not (byte)'\n' and not (byte)'.').ToArray();

        Encode([all]).Should().Equal([.. all, .. "\r\n.\r\n"u8.ToArray()]);
    }

    [Fact]
    public void Complete_resets_the_state_for_the_next_message()
    {
        var encoder = new SmtpDataEncoder();
        var output = new ArrayBufferWriter<byte>();

        encoder.Write("first\r"u8, output);
        encoder.AtLineStart.Should().BeTrue();
        encoder.Complete(output);
        encoder.Write("\n.second"u8, output);
        encoder.Complete(output);

        Encoding.ASCII.GetString(output.WrittenSpan).Should().Be("first\r\n.\r\n\r\n..second\r\n.\r\n",
            "an LF at the start of the next message is a line end of its own, not the end of the previous CR");
    }

    [Fact]
    public void Reset_returns_to_line_start()
    {
        var encoder = new SmtpDataEncoder();
        var output = new ArrayBufferWriter<byte>();
        encoder.Write("abc"u8, output);
        encoder.AtLineStart.Should().BeFalse();

        encoder.Reset();

        encoder.AtLineStart.Should().BeTrue();
        output.Clear();
        encoder.Write(".x"u8, output);
        Encoding.ASCII.GetString(output.WrittenSpan).Should().Be("..x");
    }

    /// <summary>The body of <see cref="Reference"/> alone (no final CRLF, no end-of-data line), with dot-stuffing optional.</summary>
    private static byte[] ReferenceBody(byte[] input, bool dotStuffing)
    {
        var normalised = new List<byte>(input.Length * 2);
        for (var i = 0; i < input.Length; i++)
        {
            if (input[i] is (byte)'\r' or (byte)'\n')
            {
                normalised.Add((byte)'\r');
                normalised.Add((byte)'\n');
                if (input[i] == (byte)'\r' && i + 1 < input.Length && input[i + 1] == (byte)'\n')
                {
                    i++;
                }
            }
            else
            {
                normalised.Add(input[i]);
            }
        }

        var output = new List<byte>(normalised.Count * 2);
        var lines = SplitCrlf([.. normalised]);
        for (var i = 0; i < lines.Count; i++)
        {
            if (dotStuffing && lines[i].Length > 0 && lines[i][0] == (byte)'.')
            {
                output.Add((byte)'.');
            }

            output.AddRange(lines[i]);
            if (i < lines.Count - 1)
            {
                output.Add((byte)'\r');
                output.Add((byte)'\n');
            }
        }

        return [.. output];
    }

    /// <summary>Runs <see cref="SmtpDataEncoder.Transform(ReadOnlySpan{byte}, Span{byte})"/> chunk by chunk, each into a destination exactly twice the chunk's length.</summary>
    private static byte[] TransformChunks(IEnumerable<byte[]> chunks, bool dotStuffing, VectorWidth? width = null)
    {
        var encoder = new SmtpDataEncoder { DotStuffing = dotStuffing };
        var output = new List<byte>();
        foreach (var chunk in chunks)
        {
            var destination = new byte[chunk.Length * 2];
            var written = encoder.Transform(chunk, destination, width ?? SmtpDataEncoder.HardwareVectorWidth);
            output.AddRange(destination.AsSpan(0, written).ToArray());
        }

        return [.. output];
    }

    /// <summary>Well-formed CRLF text (lines of 0–80 bytes, no leading dots) with a few special bytes, often at vector boundaries.</summary>
    private static byte[] CrlfTextWithRareSpecials(Random random, int length)
    {
        ReadOnlySpan<byte> letters = "abcdefgh ij.k\t\u00e9"u8;
        var input = new byte[length];
        var lineLeft = random.Next(81);
        for (var i = 0; i < length; i++)
        {
            if (lineLeft == 0 && i + 1 < length)
            {
                input[i] = (byte)'\r';
                input[i + 1] = (byte)'\n';
                i++;
                lineLeft = random.Next(81);
                continue;
            }

            var b = letters[random.Next(letters.Length)];
            input[i] = b == (byte)'.' && i > 0 && input[i - 1] == (byte)'\n' ? (byte)'x' : b;
            lineLeft--;
        }

        int[] boundaries = [0, 1, 14, 15, 16, 17, 30, 31, 32, 33, 34, 47, 48, 49, 62, 63, 64, 65, 66, 95, 96, 97, 127, 128, 129];
        var specials = random.Next(4);
        for (var s = 0; s < specials && length > 0; s++)
        {
            var position = random.Next(2) == 0 ? boundaries[random.Next(boundaries.Length)] % length : random.Next(length);
            var special = random.Next(6) switch
            {
                0 => "\r"u8,
                1 => "\n"u8,
                2 => "."u8,
                3 => "\r\n."u8,
                4 => "\n."u8,
                _ => "\r\r\n"u8,
            };
            special[..Math.Min(special.Length, length - position)].CopyTo(input.AsSpan(position));
        }

        return input;
    }

    [Theory]
    [InlineData(true, 256)]
    [InlineData(false, 256)]
    [InlineData(true, 128)]
    [InlineData(false, 128)]
    [InlineData(true, 0)]
    public void Long_CRLF_runs_with_rare_specials_at_vector_boundaries_match_the_reference(bool dotStuffing, int vectorBits)
    {
        var width = (VectorWidth)vectorBits;
        var random = new Random(dotStuffing ? 5150 : 5151);
        int[] lengths = [1, 2, 3, 15, 16, 17, 18, 31, 32, 33, 34, 35, 63, 64, 65, 66, 67, 95, 96, 97, 98, 127, 128, 129, 130, 1000, 9000];
        for (var n = 0; n < 600; n++)
        {
            var length = random.Next(3) == 0 ? random.Next(300) : lengths[random.Next(lengths.Length)];
            var input = CrlfTextWithRareSpecials(random, length);
            var because = $"case {n}, dot-stuffing {dotStuffing}, input \"{SmtpScript.Printable(Encoding.Latin1.GetString(input))}\"";
            ShouldMatchReferenceWholeAndInChunks(input, dotStuffing, width, random, () => random.Next(4) == 0 ? random.Next(1, 5) : random.Next(1, 100), because);

            if (dotStuffing)
            {
                Encode([input]).Should().Equal(Reference(input), because);
            }
        }
    }

    [Theory]
    [InlineData(true, 256)]
    [InlineData(false, 256)]
    [InlineData(true, 128)]
    [InlineData(false, 128)]
    [InlineData(true, 0)]
    public void A_special_sequence_at_every_position_of_CRLF_text_matches_the_reference(bool dotStuffing, int vectorBits)
    {
        var width = (VectorWidth)vectorBits;
        var text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("Lorem ipsum dolor sit amet, x.y\r\n", 5)));
        string[] specials = ["\r", "\n", ".", "\r\n.", "\n.", "\r.", "\r\r\n", "\n\n", "\r\n\r\n.\r\n"];
        foreach (var special in specials)
        {
            var bytes = Encoding.ASCII.GetBytes(special);
            for (var position = 0; position <= text.Length - bytes.Length; position++)
            {
                var input = (byte[])text.Clone();
                bytes.CopyTo(input, position);
                var because = $"\"{SmtpScript.Printable(special)}\" at {position}, dot-stuffing {dotStuffing}";

                TransformChunks([input], dotStuffing, width).Should().Equal(ReferenceBody(input, dotStuffing), because);
                TransformChunks([input[..position], input[position..]], dotStuffing, width).Should().Equal(ReferenceBody(input, dotStuffing), because);
            }
        }
    }

    /// <summary>
    /// Input where most vectors hold several stops of mixed kinds (bare CR, bare LF, '.' after either, CR at a vector's
    /// last byte with LF or '.' as the next vector's first), long enough for every vector loop to run several steps.
    /// </summary>
    [Theory]
    [InlineData(true, 256)]
    [InlineData(false, 256)]
    [InlineData(true, 128)]
    [InlineData(false, 128)]
    [InlineData(true, 0)]
    [InlineData(false, 0)]
    public void Dense_stops_in_every_vector_match_the_reference(bool dotStuffing, int vectorBits)
    {
        var width = (VectorWidth)vectorBits;
        var random = new Random(4242 + vectorBits + (dotStuffing ? 1 : 0));
        string[] alphabets = ["ab.\r\n", ".\r\n", "abcdefgh\r\n.", "\r.", "\n."];
        for (var n = 0; n < 300; n++)
        {
            var alphabet = Encoding.ASCII.GetBytes(alphabets[random.Next(alphabets.Length)]);
            var input = new byte[random.Next(700)];
            for (var i = 0; i < input.Length; i++)
            {
                input[i] = alphabet[random.Next(alphabet.Length)];
            }

            var because = $"case {n}, width {vectorBits}, dot-stuffing {dotStuffing}, input \"{SmtpScript.Printable(Encoding.Latin1.GetString(input))}\"";
            ShouldMatchReferenceWholeAndInChunks(input, dotStuffing, width, random, () => random.Next(1, 200), because);
        }
    }

    [Theory]
    [InlineData(256)]
    [InlineData(128)]
    [InlineData(0)]
    public void Runs_of_one_repeated_stop_pattern_match_the_reference(int vectorBits)
    {
        // Every byte or every other byte a stop: the most stops a vector can hold, and the 2x output bound.
        string[] patterns = ["\n", "\r", ".\n", ".\r", "\r.", "\n.", "\r\r\n", "\r\n.", "a\r", "\ra\n"];
        foreach (var pattern in patterns)
        {
            foreach (var length in new[] { 31, 32, 33, 63, 64, 65, 95, 96, 97, 127, 128, 129, 300 })
            {
                var input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(pattern, (length / pattern.Length) + 1)))[..length];
                foreach (var dotStuffing in new[] { true, false })
                {
                    TransformChunks([input], dotStuffing, (VectorWidth)vectorBits).Should().Equal(
                        ReferenceBody(input, dotStuffing),
                        $"\"{SmtpScript.Printable(pattern)}\" x {length} bytes, dot-stuffing {dotStuffing}");
                }
            }
        }
    }

    [Theory]
    [InlineData(256)]
    [InlineData(128)]
    [InlineData(0)]
    public void CR_as_the_last_byte_of_a_vector_pairs_with_the_next_vectors_first_byte(int vectorBits)
    {
        // CR at index 31, 32, 63, 64, ... (vector ends with the loops' different starting points), then LF, '.', or 'x'.
        var width = (VectorWidth)vectorBits;
        foreach (var crAt in new[] { 14, 15, 16, 30, 31, 32, 33, 62, 63, 64, 65, 94, 95, 96, 97, 126, 127, 128 })
        {
            foreach (var after in "\n.x\r")
            {
                var input = Encoding.ASCII.GetBytes(new string('a', 200));
                input[crAt] = (byte)'\r';
                input[crAt + 1] = (byte)after;
                foreach (var dotStuffing in new[] { true, false })
                {
                    TransformChunks([input], dotStuffing, width).Should().Equal(
                        ReferenceBody(input, dotStuffing), $"CR at {crAt} then \"{SmtpScript.Printable(after.ToString())}\", dot-stuffing {dotStuffing}");
                }
            }
        }
    }

    [Fact]
    public void Transform_rejects_a_destination_shorter_than_twice_the_input()
    {
        var encoder = new SmtpDataEncoder();

        var act = () => encoder.Transform("abc"u8, new byte[5]);

        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void Transform_fills_a_destination_of_exactly_twice_the_input()
    {
        var input = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(".\n", 100)));
        var encoder = new SmtpDataEncoder();
        var destination = new byte[input.Length * 2];

        encoder.Transform(input, destination).Should().Be(destination.Length);

        destination.Should().Equal(ReferenceBody(input, dotStuffing: true));
    }

    [Fact]
    public void Transform_writes_span_to_span()
    {
        var encoder = new SmtpDataEncoder();
        var destination = new byte[20];

        var written = encoder.Transform(".a\nb"u8, destination);

        Encoding.ASCII.GetString(destination, 0, written).Should().Be("..a\r\nb");
    }

    /// <summary>The transform of <paramref name="input"/> equals the reference whole, split once at random, and in random chunks.</summary>
    private static void ShouldMatchReferenceWholeAndInChunks(byte[] input, bool dotStuffing, VectorWidth width, Random random, Func<int> chunkSize, string because)
    {
        var expected = ReferenceBody(input, dotStuffing);
        TransformChunks([input], dotStuffing, width).Should().Equal(expected, because);

        var split = random.Next(input.Length + 1);
        TransformChunks([input[..split], input[split..]], dotStuffing, width).Should().Equal(expected, $"{because}, split at {split}");

        var chunks = new List<byte[]>();
        for (var offset = 0; offset < input.Length;)
        {
            var size = Math.Min(input.Length - offset, chunkSize());
            chunks.Add(input[offset..(offset + size)]);
            offset += size;
        }

        TransformChunks(chunks, dotStuffing, width).Should().Equal(expected, $"{because}, {chunks.Count} chunks");
    }
}
