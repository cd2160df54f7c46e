using System.Buffers;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace MailPipe;

/// <summary>
/// One-pass message-data transform for the DATA command (RFC 5321 §4.1.4, §4.5.2): every line end becomes CRLF
/// (LF → CRLF, bare CR → CRLF, CRLF kept), a <c>.</c> at the start of a line is doubled (dot-stuffing), and
/// <see cref="Complete"/> adds a missing final CRLF and the end-of-data line <c>.</c> CRLF.
/// </summary>
/// <remarks>
/// <para>Input may arrive in chunks split anywhere: a CR at the end of one chunk and an LF at the start of the next
/// make one line end; a <c>.</c> as the first byte of a chunk that starts a line is doubled. State is two flags.</para>
/// <para>Because every bare CR and LF is normalised, the output never contains a bare CR or LF, so no sequence such
/// as <c>&lt;LF&gt;.&lt;LF&gt;</c> or <c>&lt;CR&gt;.&lt;CR&gt;</c> can end the data early at a lenient server
/// (SMTP smuggling), and CRLF <c>.</c> CRLF appears only where <see cref="Complete"/> writes it.</para>
/// <para>No allocation: the transform runs span to span, into the writer's own memory.</para>
/// </remarks>
internal sealed class SmtpDataEncoder
{
    /// <summary>Input processed per output reservation; the output of one piece is at most twice its size.</summary>
    private const int PieceSize = 8192;

    private static ReadOnlySpan<byte> EndOfData => "\r\n.\r\n"u8;

    private bool _atLineStart = true;
    private bool _skipLineFeed;

    /// <summary>Whether a leading <c>.</c> is doubled: true for DATA, false for BDAT chunks (RFC 3030 §2: no dot-stuffing).</summary>
    public bool DotStuffing { get; set; } = true;

    /// <summary>Whether the next input byte starts a line.</summary>
    public bool AtLineStart => _atLineStart;

    /// <summary>Returns to the state at the start of message data.</summary>
    public void Reset()
    {
        _atLineStart = true;
        _skipLineFeed = false;
    }

    /// <summary>Transforms <paramref name="input"/> into <paramref name="output"/>.</summary>
    /// <param name="input">Message bytes, any line-ending convention, any chunking.</param>
    /// <param name="output">Where the wire bytes go.</param>
    public void Write(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        while (!input.IsEmpty)
        {
            var piece = input.Length > PieceSize ? input[..PieceSize] : input;
            var destination = output.GetSpan(piece.Length * 2);
            var written = Transform(piece, destination);
            output.Advance(written);
            input = input[piece.Length..];
        }
    }

    /// <summary>Transforms every segment of <paramref name="input"/>.</summary>
    /// <param name="input">Message bytes.</param>
    /// <param name="output">Where the wire bytes go.</param>
    public void Write(in ReadOnlySequence<byte> input, IBufferWriter<byte> output)
    {
        foreach (var segment in input)
        {
            Write(segment.Span, output);
        }
    }

    /// <summary>Writes a CRLF if the data did not end with a line end, then the end-of-data line; resets the state.</summary>
    /// <param name="output">Where the wire bytes go.</param>
    public void Complete(IBufferWriter<byte> output)
    {
        var tail = _atLineStart ? EndOfData[2..] : EndOfData;
        tail.CopyTo(output.GetSpan(tail.Length));
        output.Advance(tail.Length);
        Reset();
    }

    /// <summary>Takes note of bytes the caller sent unchanged (the seed's SendBytes inside DATA): the next byte starts a line only if they ended with CRLF.</summary>
    /// <param name="raw">The raw bytes just sent.</param>
    public void NoteRawBytes(ReadOnlySpan<byte> raw)
    {
        if (raw.IsEmpty)
        {
            return;
        }

        _atLineStart = raw.EndsWith("\r\n"u8);
        _skipLineFeed = false;
    }

    /// <summary>Writes a CRLF if the data did not end with a line end (BDAT content of a text message), and resets the state.</summary>
    /// <param name="output">Where the wire bytes go.</param>
    public void CompleteLine(IBufferWriter<byte> output)
    {
        if (!_atLineStart)
        {
            "\r\n"u8.CopyTo(output.GetSpan(2));
            output.Advance(2);
        }

        Reset();
    }

    /// <summary>The transform itself, span to span.</summary>
    /// <param name="input">Input bytes.</param>
    /// <param name="destination">At least twice as long as <paramref name="input"/>.</param>
    /// <returns>The number of bytes written to <paramref name="destination"/>.</returns>
    /// <remarks>
    /// The fast path copies, a vector at a time, every run of input that passes through unchanged: ordinary bytes and
    /// well-formed CRLF pairs not followed by a <c>.</c> that needs doubling. It stops only where the output differs
    /// from the input (a bare LF, a bare CR, a CR at the end of the input, a <c>.</c> after a line end when
    /// <see cref="DotStuffing"/> is on), which the scalar code handles. Bytes of <paramref name="destination"/> past
    /// the returned count may have been overwritten.
    /// </remarks>
    public int Transform(ReadOnlySpan<byte> input, Span<byte> destination)
    {
        var written = 0;
        var atLineStart = _atLineStart;
        var skipLineFeed = _skipLineFeed;
        var dotStuffing = DotStuffing;
        while (!input.IsEmpty)
        {
            if (skipLineFeed)
            {
                skipLineFeed = false;
                if (input[0] == (byte)'\n')
                {
                    input = input[1..];
                    continue;
                }
            }

            if (atLineStart)
            {
                atLineStart = false;
                if (input[0] == (byte)'.' && dotStuffing)
                {
                    destination[written++] = (byte)'.';
                }
            }

            var run = CopyUnchangedRun(input, destination[written..], dotStuffing);
            written += run;
            if (run == input.Length)
            {
                // The run ends the input; it ends a line only with a CRLF pair (a bare LF or a final CR stops it).
                atLineStart = input[^1] == (byte)'\n';
                break;
            }

            var stop = input[run];
            if (stop == (byte)'.')
            {
                // A '.' after a CRLF: the next pass doubles it.
                atLineStart = true;
                input = input[run..];
                continue;
            }

            // A bare LF, a bare CR, or a CR at the end of the input.
            destination[written] = (byte)'\r';
            destination[written + 1] = (byte)'\n';
            written += 2;
            atLineStart = true;
            skipLineFeed = stop == (byte)'\r';
            input = input[(run + 1)..];
        }

        _atLineStart = atLineStart;
        _skipLineFeed = skipLineFeed;
        return written;
    }

    /// <summary>
    /// Copies the longest prefix of <paramref name="input"/> that the transform leaves unchanged, given that its first
    /// byte needs no line-start or skipped-LF handling (the caller has done that).
    /// </summary>
    /// <param name="input">Input bytes, not empty.</param>
    /// <param name="destination">Where the prefix goes; bytes past it may be overwritten.</param>
    /// <param name="dotStuffing">Whether a <c>.</c> after a line end stops the run.</param>
    /// <returns>
    /// The prefix length: the index of the first bare LF (an LF not preceded by CR; an LF at index 0 is bare), bare CR
    /// (a CR not followed by LF, or the last byte), or, with <paramref name="dotStuffing"/>, a <c>.</c> right after an
    /// LF at index 1 or later; the input length if there is none.
    /// </returns>
    private static int CopyUnchangedRun(ReadOnlySpan<byte> input, Span<byte> destination, bool dotStuffing)
    {
        var length = input.Length;
        var first = input[0];
        if (first == (byte)'\n' || (first == (byte)'\r' && (length == 1 || input[1] != (byte)'\n')))
        {
            return 0;
        }

        // Each vector step looks at the bytes before and after the vector too, so it starts at index 1 and needs one
        // byte past its end; it stores the whole vector, so the destination must hold it.
        var index = 1;
        ref var source = ref MemoryMarshal.GetReference(input);
        ref var target = ref MemoryMarshal.GetReference(destination);
        if (Vector256.IsHardwareAccelerated)
        {
            var last = Math.Min(length - Vector256<byte>.Count - 1, destination.Length - Vector256<byte>.Count);
            var cr = Vector256.Create((byte)'\r');
            var lf = Vector256.Create((byte)'\n');
            var dot = Vector256.Create((byte)'.');
            var dotMask = dotStuffing ? Vector256<byte>.AllBitsSet : Vector256<byte>.Zero;

            // Two vectors a step, one branch for both, with a cheaper test that may flag a position one early: a CR
            // whose next byte is not LF or an LF whose previous byte is not CR (flagged at the byte before it), an LF
            // followed by '.'. A flag is resolved with the exact test; a flag at a vector's last byte may point at
            // the first byte of the next vector, so the test never checks a vector's first byte by itself (the
            // previous step, or the check of index 1 below, did).
            if (length > 1 && input[1] == (byte)'\n' && first != (byte)'\r')
            {
                destination[0] = first;
                return 1;
            }

            while (index <= last - Vector256<byte>.Count)
            {
                var flags0 = Flags256(ref source, ref target, index, cr, lf, dot, dotMask);
                var flags1 = Flags256(ref source, ref target, index + Vector256<byte>.Count, cr, lf, dot, dotMask);
                if ((flags0 | flags1) != Vector256<byte>.Zero)
                {
                    target = first;
                    var stops = Stops256(ref source, ref target, index, cr, lf, dot, dotMask);
                    if (stops != Vector256<byte>.Zero)
                    {
                        return index + BitOperations.TrailingZeroCount(stops.ExtractMostSignificantBits());
                    }

                    stops = Stops256(ref source, ref target, index + Vector256<byte>.Count, cr, lf, dot, dotMask);
                    if (stops != Vector256<byte>.Zero)
                    {
                        return index + Vector256<byte>.Count + BitOperations.TrailingZeroCount(stops.ExtractMostSignificantBits());
                    }

                    // Only the last byte of the second vector was flagged: the stop is the byte after it.
                    return index + (2 * Vector256<byte>.Count);
                }

                index += 2 * Vector256<byte>.Count;
            }

            while (index <= last)
            {
                var stops = Stops256(ref source, ref target, index, cr, lf, dot, dotMask);
                if (stops != Vector256<byte>.Zero)
                {
                    var run = index + BitOperations.TrailingZeroCount(stops.ExtractMostSignificantBits());
                    target = first;
                    return run;
                }

                index += Vector256<byte>.Count;
            }
        }

        if (Vector128.IsHardwareAccelerated)
        {
            var last = Math.Min(length - Vector128<byte>.Count - 1, destination.Length - Vector128<byte>.Count);
            var cr = Vector128.Create((byte)'\r');
            var lf = Vector128.Create((byte)'\n');
            var dot = Vector128.Create((byte)'.');
            var dotMask = dotStuffing ? Vector128<byte>.AllBitsSet : Vector128<byte>.Zero;
            while (index <= last)
            {
                var previous = Vector128.LoadUnsafe(ref source, (nuint)(index - 1));
                var current = Vector128.LoadUnsafe(ref source, (nuint)index);
                var next = Vector128.LoadUnsafe(ref source, (nuint)(index + 1));
                current.StoreUnsafe(ref target, (nuint)index);
                var previousIsLf = Vector128.Equals(previous, lf);
                var stops = Vector128.AndNot(Vector128.Equals(current, lf), Vector128.Equals(previous, cr))
                    | Vector128.AndNot(Vector128.Equals(current, cr), Vector128.Equals(next, lf))
                    | (Vector128.Equals(current, dot) & previousIsLf & dotMask);
                if (stops != Vector128<byte>.Zero)
                {
                    var run = index + BitOperations.TrailingZeroCount(stops.ExtractMostSignificantBits());
                    target = first;
                    return run;
                }

                index += Vector128<byte>.Count;
            }
        }

        // Scalar tail (and the whole run where vectors are not accelerated).
        var start = index;
        for (; index < length; index++)
        {
            var b = input[index];
            if (b == (byte)'\n')
            {
                if (input[index - 1] != (byte)'\r')
                {
                    break;
                }
            }
            else if (b == (byte)'\r')
            {
                if (index + 1 == length || input[index + 1] != (byte)'\n')
                {
                    break;
                }
            }
            else if (b == (byte)'.' && dotStuffing && input[index - 1] == (byte)'\n')
            {
                break;
            }
        }

        destination[0] = first;
        input[start..index].CopyTo(destination[start..]);
        return index;
    }

    /// <summary>
    /// Stores the 32 input bytes at <paramref name="index"/> to the same index of the destination and returns a mask of
    /// those that stop an unchanged run: a bare LF, a CR not followed by LF, a <c>.</c> after an LF (when
    /// <paramref name="dotMask"/> is all ones). Reads one byte before and one after the 32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Stops256(ref byte source, ref byte target, int index, Vector256<byte> cr, Vector256<byte> lf, Vector256<byte> dot, Vector256<byte> dotMask)
    {
        var previous = Vector256.LoadUnsafe(ref source, (nuint)(index - 1));
        var current = Vector256.LoadUnsafe(ref source, (nuint)index);
        var next = Vector256.LoadUnsafe(ref source, (nuint)(index + 1));
        current.StoreUnsafe(ref target, (nuint)index);
        return Vector256.AndNot(Vector256.Equals(current, lf), Vector256.Equals(previous, cr))
            | Vector256.AndNot(Vector256.Equals(current, cr), Vector256.Equals(next, lf))
            | (Vector256.Equals(current, dot) & Vector256.Equals(previous, lf) & dotMask);
    }

    /// <summary>
    /// Stores the 32 input bytes at <paramref name="index"/> to the same index of the destination and returns a cheap
    /// superset of <see cref="Stops256"/>, each stop flagged at its own position or the one before (see the caller).
    /// Reads one byte after the 32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<byte> Flags256(ref byte source, ref byte target, int index, Vector256<byte> cr, Vector256<byte> lf, Vector256<byte> dot, Vector256<byte> dotMask)
    {
        var current = Vector256.LoadUnsafe(ref source, (nuint)index);
        var next = Vector256.LoadUnsafe(ref source, (nuint)(index + 1));
        current.StoreUnsafe(ref target, (nuint)index);
        var currentIsLf = Vector256.Equals(current, lf);
        return (Vector256.Equals(current, cr) ^ Vector256.Equals(next, lf))
            | (currentIsLf & Vector256.Equals(next, dot) & dotMask);
    }
}
