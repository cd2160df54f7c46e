using System.Buffers;

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
    public int Transform(ReadOnlySpan<byte> input, Span<byte> destination)
    {
        var written = 0;
        var atLineStart = _atLineStart;
        var skipLineFeed = _skipLineFeed;
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
                if (input[0] == (byte)'.' && DotStuffing)
                {
                    destination[written++] = (byte)'.';
                }
            }

            var lineEnd = input.IndexOfAny((byte)'\r', (byte)'\n');
            if (lineEnd < 0)
            {
                input.CopyTo(destination[written..]);
                written += input.Length;
                break;
            }

            input[..lineEnd].CopyTo(destination[written..]);
            written += lineEnd;
            destination[written] = (byte)'\r';
            destination[written + 1] = (byte)'\n';
            written += 2;
            atLineStart = true;
            skipLineFeed = input[lineEnd] == (byte)'\r';
            input = input[(lineEnd + 1)..];
        }

        _atLineStart = atLineStart;
        _skipLineFeed = skipLineFeed;
        return written;
    }
}
