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
internal sealed partial class SmtpDataEncoder
{
    /// <summary>
    /// Input processed per output reservation; the output of one piece is at most twice its size (one byte more after
    /// raw bytes that ended with a CR). Each piece ends with up to ≈ 150 bytes through the narrow and scalar paths (the
    /// wide loop needs input past what it stores), so a larger piece spends less of its time there: ≈ 1 % of the bytes
    /// at 32 KiB against ≈ 4 % at 8 KiB.
    /// </summary>
    private const int PieceSize = 32 * 1024;

    private static ReadOnlySpan<byte> EndOfData => "\r\n.\r\n"u8;

    private bool _atLineStart = true;
    private bool _skipLineFeed;
    private bool _rawCarriageReturn;

    /// <summary>Whether a leading <c>.</c> is doubled: true for DATA, false for BDAT chunks (RFC 3030 §2: no dot-stuffing).</summary>
    public bool DotStuffing { get; set; } = true;

    /// <summary>Whether the next input byte starts a line.</summary>
    public bool AtLineStart => _atLineStart;

    /// <summary>Returns to the state at the start of message data.</summary>
    public void Reset()
    {
        _atLineStart = true;
        _skipLineFeed = false;
        _rawCarriageReturn = false;
    }

    /// <summary>Transforms <paramref name="input"/> into <paramref name="output"/>.</summary>
    /// <param name="input">Message bytes, any line-ending convention, any chunking.</param>
    /// <param name="output">Where the wire bytes go.</param>
    public void Write(ReadOnlySpan<byte> input, IBufferWriter<byte> output)
    {
        while (!input.IsEmpty)
        {
            var piece = input.Length > PieceSize ? input[..PieceSize] : input;
            var destination = output.GetSpan((piece.Length * 2) + 1);
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

    /// <summary>Writes a CRLF (an LF after a raw CR) if the data did not end with a line end, then the end-of-data line; resets the state.</summary>
    /// <param name="output">Where the wire bytes go.</param>
    public void Complete(IBufferWriter<byte> output)
    {
        // After raw bytes ending with a CR (SendBytesAsync), the LF alone completes that line end.
        var tail = _atLineStart ? EndOfData[2..] : _rawCarriageReturn ? EndOfData[1..] : EndOfData;
        tail.CopyTo(output.GetSpan(tail.Length));
        output.Advance(tail.Length);
        Reset();
    }

    /// <summary>
    /// Takes bytes the caller sends unchanged (the seed's SendBytes inside DATA) and returns the part to put on the wire:
    /// all of them, except an LF first that completes a CR ending the previous data write, which went out as CRLF already
    /// (sending the LF again would put a bare LF on the wire). Afterwards the next byte starts a line only if the wire
    /// now ends with CRLF, whether these bytes hold it whole or complete a CR that earlier raw bytes ended with.
    /// </summary>
    /// <param name="raw">The raw bytes about to be sent.</param>
    /// <returns>The bytes to send: <paramref name="raw"/>, or <paramref name="raw"/> without its first byte.</returns>
    public ReadOnlySpan<byte> TakeRawBytes(ReadOnlySpan<byte> raw)
    {
        if (raw.IsEmpty)
        {
            return raw;
        }

        if (_skipLineFeed && raw[0] == (byte)'\n')
        {
            // The data ended with a CR, written as CRLF: this LF is its line end's second half, on the wire already.
            raw = raw[1..];
            _skipLineFeed = false;
            if (raw.IsEmpty)
            {
                return raw; // the wire still ends with that CRLF: the next byte starts a line
            }
        }

        _atLineStart = raw.EndsWith("\r\n"u8) || (raw.Length == 1 && raw[0] == (byte)'\n' && _rawCarriageReturn);
        _rawCarriageReturn = raw[^1] == (byte)'\r';
        _skipLineFeed = false;
        return raw;
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
    /// <param name="destination">At least twice as long as <paramref name="input"/>, and one byte more after raw bytes that ended with a CR.</param>
    /// <returns>The number of bytes written to <paramref name="destination"/>.</returns>
    /// <remarks>
    /// The output is the input with bytes inserted before some input bytes, the "stops": a CR before a bare LF, an LF
    /// before the byte after a bare CR (and a <c>.</c> too if that byte is a <c>.</c>), a <c>.</c> before a <c>.</c>
    /// after an LF. The vector paths find the stops of a whole vector at once and handle them without leaving the
    /// loop. Bytes of <paramref name="destination"/> past the returned count may have been overwritten.
    /// </remarks>
    public int Transform(ReadOnlySpan<byte> input, Span<byte> destination) => Transform(input, destination, HardwareVectorWidth);

    /// <summary>The widest vector path this machine accelerates; <see cref="Transform(ReadOnlySpan{byte}, Span{byte})"/> uses it.</summary>
    internal static VectorWidth HardwareVectorWidth { get; } =
        Vector256.IsHardwareAccelerated ? VectorWidth.Bits256 : Vector128.IsHardwareAccelerated ? VectorWidth.Bits128 : VectorWidth.None;

    /// <summary>
    /// <see cref="Transform(ReadOnlySpan{byte}, Span{byte})"/> using vectors no wider than <paramref name="width"/>, so
    /// that tests on an AVX2 machine also run the paths other hardware takes.
    /// </summary>
    /// <param name="input">Input bytes.</param>
    /// <param name="destination">At least twice as long as <paramref name="input"/>, and one byte more after raw bytes that ended with a CR (the LF that completes it).</param>
    /// <param name="width">The widest vectors to use (never wider than the hardware accelerates).</param>
    /// <returns>The number of bytes written to <paramref name="destination"/>.</returns>
    internal int Transform(ReadOnlySpan<byte> input, Span<byte> destination, VectorWidth width)
    {
        if (destination.Length < (2L * input.Length) + (_rawCarriageReturn ? 1 : 0))
        {
            throw new ArgumentException("The destination must be at least twice as long as the input (and one byte more after raw bytes that ended with a CR).", nameof(destination));
        }

        if (input.IsEmpty)
        {
            return 0;
        }

        var dotStuffing = DotStuffing;
        var index = 0;
        var written = 0;
        if (_rawCarriageReturn)
        {
            // Raw bytes (SendBytesAsync) ended with a CR already on the wire: an LF here completes that line end, and
            // any other byte gets one first (as the end of data does), so that the CR is not left bare.
            _rawCarriageReturn = false;
            destination[written++] = (byte)'\n';
            _atLineStart = true;
            if (input[0] == (byte)'\n')
            {
                if (input.Length == 1)
                {
                    return written;
                }

                index = 1;
            }
        }

        if (_skipLineFeed)
        {
            // The previous input ended with a CR, already written as CRLF: an LF here completes that line end.
            _skipLineFeed = false;
            if (input[0] == (byte)'\n')
            {
                if (input.Length == 1)
                {
                    return 0;
                }

                index = 1;
            }
        }

        // The first byte has no predecessor in this input; the state says what it was.
        var first = input[index];
        if (first == (byte)'.' && _atLineStart && dotStuffing)
        {
            destination[written++] = (byte)'.';
        }
        else if (first == (byte)'\n')
        {
            // Bare: a CR before it ended the previous input and was skipped above, or it is at the start of the data.
            destination[written++] = (byte)'\r';
        }

        destination[written++] = first;
        index++;

        written = TransformBody(input, index, destination, written, dotStuffing, width);

        // A final CR is written as CRLF now; an LF at the start of the next input belongs to it.
        var last = input[^1];
        if (last == (byte)'\r')
        {
            destination[written++] = (byte)'\n';
            _skipLineFeed = true;
        }

        _atLineStart = last is (byte)'\r' or (byte)'\n';
        return written;
    }

    /// <summary>Transforms <paramref name="input"/> from <paramref name="index"/> (at least 1: every byte has its predecessor here).</summary>
    /// <returns>The new count of bytes in <paramref name="destination"/>.</returns>
    private static int TransformBody(ReadOnlySpan<byte> input, int index, Span<byte> destination, int written, bool dotStuffing, VectorWidth width)
    {
        if (width != VectorWidth.None && Vector128.IsHardwareAccelerated)
        {
            // Input byte i goes to i + shift in the destination until the next stop.
            var shift = (nint)written - index;
            var at = (nint)index;
            if (width == VectorWidth.Bits256 && Vector256.IsHardwareAccelerated)
            {
                at = Run256(input, destination, at, ref shift, dotStuffing);
            }

            at = Run128(input, destination, at, ref shift, dotStuffing);
            index = (int)at;
            written = (int)(at + shift);
        }

        // Scalar tail (and everything where vectors are not accelerated), the same rules a byte at a time.
        var length = input.Length;
        for (; index < length; index++)
        {
            var current = input[index];
            var previous = input[index - 1];
            if (current == (byte)'\n')
            {
                if (previous != (byte)'\r')
                {
                    destination[written++] = (byte)'\r';
                }
            }
            else
            {
                if (previous == (byte)'\r')
                {
                    destination[written++] = (byte)'\n';
                    previous = (byte)'\n';
                }

                if (current == (byte)'.' && previous == (byte)'\n' && dotStuffing)
                {
                    destination[written++] = (byte)'.';
                }
            }

            destination[written++] = current;
        }

        return written;
    }

    // The vector loops store each vector of input where it goes if nothing is inserted, then, for each stop in it
    // (a set bit of the mask), write the inserted byte and store the input again from the stop on, one byte further
    // along: a stop costs a few instructions inside the loop instead of a trip through scalar code.
    //
}
