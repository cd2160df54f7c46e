using System.Text;

namespace MailPipe.Cli;

/// <summary>One header field as it sits in the raw bytes of a message: its name and where its lines start and end (folded continuation lines included).</summary>
/// <param name="Name">The field name (ASCII), without the colon and trailing white space; empty for a line that is not a field.</param>
/// <param name="Start">The offset of the field's first byte.</param>
/// <param name="Length">The length of the field in bytes, its final line break included.</param>
/// <param name="ValueStart">The offset just after the colon (equals <paramref name="Start"/> for a line without one).</param>
internal readonly record struct RawHeaderField(string Name, int Start, int Length, int ValueStart)
{
    /// <summary>The offset just after the field's final line break.</summary>
    public int End => Start + Length;
}

/// <summary>
/// The header section of a message file, kept as the exact bytes read (RFC 5322 §2.2, §3.5): the fields, then the
/// empty line that ends them. Only this part of a file is held in memory; the body is streamed from <see cref="BodyOffset"/>.
/// </summary>
internal sealed class HeaderSection
{
    /// <summary>The most header bytes read before giving up (a file with no empty line is all header; past this it is refused).</summary>
    public const int MaxHeaderBytes = 4 * 1024 * 1024;

    private HeaderSection(byte[] bytes, int fieldsEnd, IReadOnlyList<RawHeaderField> fields)
    {
        Bytes = bytes;
        FieldsEnd = fieldsEnd;
        Fields = fields;
    }

    /// <summary>The header section: every field and the empty line after them (absent when the file has no body).</summary>
    public byte[] Bytes { get; }

    /// <summary>Where the fields end and the empty line starts.</summary>
    public int FieldsEnd { get; }

    /// <summary>Where the body starts in the file: the length of <see cref="Bytes"/>.</summary>
    public int BodyOffset => Bytes.Length;

    /// <summary>The fields in file order.</summary>
    public IReadOnlyList<RawHeaderField> Fields { get; }

    /// <summary>Reads the header section from the start of <paramref name="stream"/>; the stream is left somewhere after it.</summary>
    /// <param name="stream">A readable stream at the start of the message.</param>
    /// <returns>The header section.</returns>
    /// <exception cref="InvalidDataException">The header section is larger than <see cref="MaxHeaderBytes"/>.</exception>
    public static HeaderSection Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var buffer = new byte[16 * 1024];
        var length = 0;
        var scanFrom = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (buffer.Length >= MaxHeaderBytes)
                {
                    throw new InvalidDataException($"the header section is larger than {MaxHeaderBytes / (1024 * 1024)} MiB, or the file is not a message");
                }

                Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxHeaderBytes));
            }

            var read = stream.Read(buffer.AsSpan(length));
            length += read;
            var atEnd = read == 0;
            var found = FindEnd(buffer.AsSpan(0, length), atEnd, ref scanFrom, out var fieldsEnd, out var sectionEnd);
            if (found)
            {
                return Parse(buffer.AsSpan(0, sectionEnd).ToArray(), fieldsEnd);
            }
        }
    }

    /// <summary>Parses a header section held in memory (the whole message, or its start).</summary>
    /// <param name="message">The message bytes.</param>
    /// <returns>The header section.</returns>
    public static HeaderSection Parse(ReadOnlySpan<byte> message)
    {
        var scanFrom = 0;
        FindEnd(message, atEnd: true, ref scanFrom, out var fieldsEnd, out var sectionEnd);
        return Parse(message[..sectionEnd].ToArray(), fieldsEnd);
    }

    /// <summary>The text of a field's value (after the colon), unfolded: every line break removed, white space kept.</summary>
    /// <param name="field">A field of this section.</param>
    /// <returns>The value bytes without CR and LF.</returns>
    public byte[] UnfoldedValue(RawHeaderField field)
    {
        var raw = Bytes.AsSpan(field.ValueStart, field.End - field.ValueStart);
        var result = new byte[raw.Length];
        var count = 0;
        foreach (var b in raw)
        {
            if (b is not ((byte)'\r' or (byte)'\n'))
            {
                result[count++] = b;
            }
        }

        return result.AsSpan(0, count).ToArray();
    }

    /// <summary>The header section without the fields that <paramref name="remove"/> selects; every other byte is kept exactly.</summary>
    /// <param name="remove">Selects the fields to drop.</param>
    /// <returns>The new header section bytes (the empty line included).</returns>
    public byte[] Without(Func<RawHeaderField, bool> remove)
    {
        ArgumentNullException.ThrowIfNull(remove);
        using var output = new MemoryStream(Bytes.Length);
        var copyFrom = 0;
        foreach (var field in Fields)
        {
            if (remove(field))
            {
                output.Write(Bytes, copyFrom, field.Start - copyFrom);
                copyFrom = field.End;
            }
        }

        output.Write(Bytes, copyFrom, Bytes.Length - copyFrom);
        return output.ToArray();
    }

    /// <summary>
    /// Looks for the empty line that ends the header section, scanning line by line from <paramref name="scanFrom"/> (a
    /// line start). A line ends with CRLF, LF or a bare CR, as MailPipe sends it (each becomes CRLF on the wire), so that
    /// the fields read here are the fields the server receives.
    /// </summary>
    private static bool FindEnd(ReadOnlySpan<byte> data, bool atEnd, ref int scanFrom, out int fieldsEnd, out int sectionEnd)
    {
        var pos = scanFrom;
        while (pos < data.Length)
        {
            var lineEnd = LineEnd(data, pos, atEnd);
            if (lineEnd < 0)
            {
                break; // a CR last in what was read so far: a CRLF or a bare CR, the next read says
            }

            if (data[pos] is (byte)'\r' or (byte)'\n')
            {
                fieldsEnd = pos;
                sectionEnd = lineEnd;
                return true;
            }

            pos = lineEnd;
            scanFrom = pos;
        }

        if (atEnd)
        {
            // No empty line: the whole message is header (RFC 5322 §3.5 allows a message without a body).
            fieldsEnd = data.Length;
            sectionEnd = data.Length;
            return true;
        }

        fieldsEnd = sectionEnd = 0;
        return false;
    }

    /// <summary>
    /// Where the line starting at <paramref name="pos"/> ends, after its CRLF, LF or bare CR: <c>data.Length</c> for a last
    /// line without one, -1 when a CR ends <paramref name="data"/> and more data may follow.
    /// </summary>
    private static int LineEnd(ReadOnlySpan<byte> data, int pos, bool atEnd)
    {
        var at = data[pos..].IndexOfAny((byte)'\r', (byte)'\n');
        if (at < 0)
        {
            return atEnd ? data.Length : -1;
        }

        at += pos;
        if (data[at] == (byte)'\n')
        {
            return at + 1;
        }

        return at + 1 < data.Length ? (data[at + 1] == (byte)'\n' ? at + 2 : at + 1) : atEnd ? at + 1 : -1;
    }

    private static HeaderSection Parse(byte[] bytes, int fieldsEnd)
    {
        var fields = new List<RawHeaderField>();
        var pos = 0;
        while (pos < fieldsEnd)
        {
            var start = pos;
            pos = NextLine(bytes, pos, fieldsEnd);
            while (pos < fieldsEnd && bytes[pos] is (byte)' ' or (byte)'\t')
            {
                pos = NextLine(bytes, pos, fieldsEnd);
            }

            var firstLine = bytes.AsSpan(start, NextLine(bytes, start, fieldsEnd) - start);
            var colon = firstLine.IndexOf((byte)':');
            var startsWithSpace = bytes[start] is (byte)' ' or (byte)'\t';
            if (colon <= 0 || startsWithSpace)
            {
                fields.Add(new RawHeaderField(string.Empty, start, pos - start, start));
                continue;
            }

            var name = Encoding.Latin1.GetString(firstLine[..colon]).TrimEnd(' ', '\t');
            fields.Add(new RawHeaderField(name, start, pos - start, start + colon + 1));
        }

        return new HeaderSection(bytes, fieldsEnd, fields);
    }

    private static int NextLine(byte[] bytes, int pos, int limit) => LineEnd(bytes.AsSpan(0, limit), pos, atEnd: true);
}
