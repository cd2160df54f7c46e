namespace MailPipe;

/// <summary>
/// Leaves the <c>Bcc</c> and <c>Resent-Bcc</c> fields out of the header of the message written through it, and only
/// of that header: MimeKit's <c>FormatOptions.HiddenHeaders</c> would also take them out of an attached message
/// (<c>message/rfc822</c>), which is content and must arrive as it is (a DKIM body hash covers it). Holds one line of the
/// header at a time; after the header's blank line the bytes go through as they are. Expects CRLF or LF line ends.
/// </summary>
internal sealed class TopLevelFieldFilter(Stream inner) : Stream
{
    private readonly List<byte> _line = [];
    private bool _inBody;
    private bool _dropping;

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override void Flush() => inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        var rest = Header(buffer, out var output);
        if (output is not null)
        {
            inner.Write(output);
        }

        if (!rest.IsEmpty)
        {
            inner.Write(rest);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var consumed = HeaderLength(buffer.Span, out var output);
        if (output is not null)
        {
            await inner.WriteAsync(output, cancellationToken).ConfigureAwait(false);
        }

        if (consumed < buffer.Length)
        {
            await inner.WriteAsync(buffer[consumed..], cancellationToken).ConfigureAwait(false);
        }
    }

    private ReadOnlySpan<byte> Header(ReadOnlySpan<byte> buffer, out byte[]? output) => buffer[HeaderLength(buffer, out output)..];

    /// <summary>Takes the bytes of <paramref name="buffer"/> that belong to the header; <paramref name="output"/> is what of them goes out.</summary>
    /// <returns>How many bytes of <paramref name="buffer"/> were taken (the rest is body).</returns>
    private int HeaderLength(ReadOnlySpan<byte> buffer, out byte[]? output)
    {
        output = null;
        if (_inBody)
        {
            return 0;
        }

        List<byte>? kept = null;
        var taken = 0;
        while (taken < buffer.Length && !_inBody)
        {
            var lf = buffer[taken..].IndexOf((byte)'\n');
            if (lf < 0)
            {
                _line.AddRange(buffer[taken..]);
                taken = buffer.Length;
                break;
            }

            _line.AddRange(buffer.Slice(taken, lf + 1));
            taken += lf + 1;
            if (_line.Count <= 2 && (_line.Count == 1 || _line[0] == (byte)'\r'))
            {
                _inBody = true; // the blank line that ends the header
                _dropping = false;
            }
            else if (_line[0] is not ((byte)' ' or (byte)'\t'))
            {
                _dropping = IsHidden(_line);
            }

            if (!_dropping)
            {
                (kept ??= []).AddRange(_line);
            }

            _line.Clear();
        }

        output = kept?.ToArray();
        return taken;
    }

    private static bool IsHidden(List<byte> line)
    {
        var colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            return false;
        }

        var name = System.Text.Encoding.ASCII.GetString([.. line.GetRange(0, colon)]).TrimEnd();
        return name.Equals("Bcc", StringComparison.OrdinalIgnoreCase) || name.Equals("Resent-Bcc", StringComparison.OrdinalIgnoreCase);
    }
}
