using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace MailPipe;

/// <summary>
/// Incremental parser of SMTP replies (RFC 5321 §4.2) over a <see cref="SequenceReader{T}"/>. No I/O.
/// </summary>
/// <remarks>
/// <para>It consumes only complete lines and keeps the lines of an unfinished multi-line reply in its own buffer, so
/// its state survives partial input: the caller advances its <c>PipeReader</c> to the reader's position whether or not
/// a reply was completed. Text is decoded once, when the final line arrives.</para>
/// <para>Lines end in CRLF; a bare LF is accepted as a line end (its CR, if any, removed). Every limit of
/// <see cref="SmtpProtocolLimits"/> is enforced before data is buffered, so a hostile server cannot make it grow
/// without end.</para>
/// </remarks>
internal sealed class SmtpReplyParser
{
    private const byte LineFeed = (byte)'\n';
    private const byte CarriageReturn = (byte)'\r';

    private readonly SmtpProtocolLimits _limits;
    private byte[] _text = new byte[256];
    private int _textLength;
    private int[] _lineEnds = new int[8];
    private int _lineCount;
    private int _replyBytes;
    private int _blankLines;
    private int _code;

    /// <summary>
    /// Recent one-line replies. <see cref="SmtpReply"/> is immutable, so a reply whose bytes equal a recent one's
    /// ("250 2.1.0 Ok", "354 …" on every message) is returned as that same object: no allocation at all.
    /// </summary>
    private readonly SmtpReply?[] _recent = new SmtpReply?[8];
    private int _recentNext;
    private const int MaxRecentLength = 128;

    public SmtpReplyParser(SmtpProtocolLimits limits)
    {
        limits.Validate();
        _limits = limits;
    }

    /// <summary>Whether lines of an unfinished reply are held.</summary>
    public bool HasPartialReply => _lineCount > 0;

    /// <summary>Forgets any partial reply.</summary>
    public void Reset()
    {
        _textLength = 0;
        _lineCount = 0;
        _replyBytes = 0;
        _blankLines = 0;
        _code = 0;
    }

    /// <summary>
    /// Consumes complete lines from <paramref name="reader"/> until a reply is complete or no complete line is left.
    /// </summary>
    /// <param name="reader">The input; advanced past every line consumed.</param>
    /// <param name="reply">The reply, when complete.</param>
    /// <returns><see langword="true"/> when a reply was completed.</returns>
    /// <exception cref="SmtpProtocolException">A malformed line, lines that disagree on the code, or a limit exceeded.</exception>
    public bool TryParse(ref SequenceReader<byte> reader, [NotNullWhen(true)] out SmtpReply? reply)
    {
        reply = null;
        while (true)
        {
            // Fast path: the whole line is in the current segment (almost always: replies are short), so it is read
            // in place, with no ReadOnlySequence slicing and no copy of the code and separator.
            var unread = reader.UnreadSpan;
            var lineFeed = unread.IndexOf(LineFeed);
            bool isLast;
            if (lineFeed >= 0)
            {
                reader.Advance(lineFeed + 1);
                CheckLineLength(lineFeed);
                isLast = AcceptLine(unread[..lineFeed]);
            }
            else
            {
                if (!reader.TryReadTo(out ReadOnlySequence<byte> line, LineFeed, advancePastDelimiter: true))
                {
                    if (reader.Remaining >= _limits.MaxReplyLineLength)
                    {
                        throw TooLong($"a reply line is longer than {_limits.MaxReplyLineLength} bytes");
                    }

                    return false;
                }

                // A line across segments: copied once, after the text so far, and read from there.
                CheckLineLength(line.Length);
                var length = (int)line.Length;
                EnsureTextCapacity(length);
                var copy = _text.AsSpan(_textLength, length);
                line.CopyTo(copy);
                isLast = AcceptLine(copy);
            }

            if (isLast)
            {
                reply = BuildReply();
                return true;
            }
        }
    }

    private void CheckLineLength(long lengthWithoutLineFeed)
    {
        if (lengthWithoutLineFeed + 1 > _limits.MaxReplyLineLength)
        {
            throw TooLong($"a reply line is longer than {_limits.MaxReplyLineLength} bytes");
        }
    }

    /// <summary>Takes one line (without its LF, perhaps with its CR); returns true when it was the last line of a reply.</summary>
    /// <param name="line">The line; it may lie in <see cref="_text"/> past the text so far (then the text moves down over the code).</param>
    private bool AcceptLine(ReadOnlySpan<byte> line)
    {
        _replyBytes += line.Length + 1;
        if (_replyBytes > _limits.MaxReplyBytes)
        {
            throw TooLong($"a reply is longer than {_limits.MaxReplyBytes} bytes");
        }

        if (_lineCount + _blankLines >= _limits.MaxReplyLines)
        {
            throw TooLong($"a reply has more than {_limits.MaxReplyLines} lines");
        }

        if (!line.IsEmpty && line[^1] == CarriageReturn)
        {
            line = line[..^1];
        }

        if (line.IsEmpty)
        {
            // A blank line carries no reply (some servers send one after a greeting or a multi-line reply): skipped,
            // but counted toward the limits of the reply that follows.
            _blankLines++;
            return false;
        }

        if (line.Length < 3 || !IsDigit(line[0]) || !IsDigit(line[1]) || !IsDigit(line[2]))
        {
            throw Malformed(line, "a reply line must start with a three-digit reply code");
        }

        var code = ((line[0] - '0') * 100) + ((line[1] - '0') * 10) + (line[2] - '0');
        if (code is < 200 or > 599)
        {
            throw Malformed(line, "a reply code must start with 2, 3, 4 or 5");
        }

        if (_lineCount > 0 && code != _code)
        {
            throw Malformed(line, $"the lines of one reply disagree on the reply code ({_code} then {code})");
        }

        var isLast = true;
        var textStart = 3;
        if (line.Length > 3)
        {
            switch (line[3])
            {
                case (byte)' ':
                    textStart = 4;
                    break;
                case (byte)'-':
                    textStart = 4;
                    isLast = false;
                    break;
                default:
                    throw Malformed(line, "the reply code must be followed by a space, a hyphen or the end of the line");
            }
        }

        // Keep only the text (CopyTo allows the overlap when the line was copied into _text).
        var text = line[textStart..];
        EnsureTextCapacity(text.Length);
        text.CopyTo(_text.AsSpan(_textLength));
        _textLength += text.Length;
        if (_lineCount == _lineEnds.Length)
        {
            Array.Resize(ref _lineEnds, _lineEnds.Length * 2);
        }

        _lineEnds[_lineCount++] = _textLength;
        _code = code;
        return isLast;
    }

    private SmtpReply BuildReply()
    {
        if (_lineCount == 1 && _lineEnds[0] <= MaxRecentLength)
        {
            var text = _text.AsSpan(0, _lineEnds[0]);
            foreach (var recent in _recent)
            {
                if (recent is not null && recent.Code == _code && EqualsAscii(text, recent.Lines[0]))
                {
                    Reset();
                    return recent;
                }
            }

            var single = SmtpReply.FromParsedLines(_code, [text.IsEmpty ? string.Empty : Encoding.UTF8.GetString(text)]);
            _recent[_recentNext] = single;
            _recentNext = (_recentNext + 1) % _recent.Length;
            Reset();
            return single;
        }

        var lines = new string[_lineCount];
        var start = 0;
        for (var i = 0; i < _lineCount; i++)
        {
            var end = _lineEnds[i];
            lines[i] = end == start ? string.Empty : Encoding.UTF8.GetString(_text, start, end - start);
            start = end;
        }

        var reply = SmtpReply.FromParsedLines(_code, lines);
        Reset();
        return reply;
    }

    private void EnsureTextCapacity(int extra)
    {
        var needed = _textLength + extra;
        if (needed > _text.Length)
        {
            Array.Resize(ref _text, Math.Max(needed, _text.Length * 2));
        }
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    /// <summary>Whether the bytes are exactly the ASCII characters of <paramref name="text"/> (non-ASCII never matches: no cache).</summary>
    private static bool EqualsAscii(ReadOnlySpan<byte> bytes, string text)
    {
        if (bytes.Length != text.Length)
        {
            return false;
        }

        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] != text[i] || bytes[i] >= 0x80)
            {
                return false;
            }
        }

        return true;
    }

    private SmtpProtocolException Malformed(ReadOnlySpan<byte> line, string what)
    {
        Reset();
        var shown = line.Length > 80 ? line[..80] : line;
        return new SmtpProtocolException(SmtpErrorCode.ProtocolError, $"Malformed SMTP reply: {what} (RFC 5321 §4.2). Line: \"{Printable(shown)}\"");
    }

    private SmtpProtocolException TooLong(string what)
    {
        Reset();
        return new SmtpProtocolException(SmtpErrorCode.ReplyTooLong, $"SMTP reply rejected: {what} (SmtpProtocolLimits).");
    }

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length);
        foreach (var b in bytes)
        {
            builder.Append(b is >= 0x20 and < 0x7F ? (char)b : '?');
        }

        return builder.ToString();
    }
}
