namespace MailPipe.Transport;

/// <summary>
/// The stream under an <see cref="System.Net.Security.SslStream"/>: a pass-through that keeps the first bytes the server
/// sent during the handshake, so that a handshake that fails on plain text (an SMTP greeting, <c>220 ...</c>, from a port
/// that has no implicit TLS) can say what came instead of .NET's "Cannot determine the frame size".
/// </summary>
/// <param name="inner">The connection's stream; not disposed by this one (the connection disposes it).</param>
internal sealed class HandshakeRecordingStream(Stream inner) : Stream
{
    private const int Capacity = 128;
    private readonly byte[] _first = new byte[Capacity];
    private int _count;
    private volatile bool _recording = true;

    /// <summary>
    /// The first line the server sent, when the bytes read during the handshake start as an SMTP reply does (three
    /// digits, then a space, a hyphen or the line end): printable ASCII only, at most 100 characters. Else
    /// <see langword="null"/>: a TLS record, or nothing.
    /// </summary>
    public string? PlainTextReply
    {
        get
        {
            var first = _first.AsSpan(0, Volatile.Read(ref _count));
            if (first.Length < 4 || !char.IsAsciiDigit((char)first[0]) || !char.IsAsciiDigit((char)first[1]) || !char.IsAsciiDigit((char)first[2])
                || first[3] is not ((byte)' ' or (byte)'-' or (byte)'\r' or (byte)'\n'))
            {
                return null;
            }

            var end = first.IndexOfAny((byte)'\r', (byte)'\n');
            var line = first[..(end < 0 ? first.Length : end)];
            var text = new char[Math.Min(line.Length, 100)];
            for (var i = 0; i < text.Length; i++)
            {
                text[i] = line[i] is >= 0x20 and < 0x7F ? (char)line[i] : '?';
            }

            return new string(text);
        }
    }

    /// <inheritdoc/>
    public override bool CanRead => inner.CanRead;

    /// <inheritdoc/>
    public override bool CanWrite => inner.CanWrite;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>The handshake is over: reads pass through without a look (the TLS records that follow are not kept).</summary>
    public void StopRecording() => _recording = false;

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _recording ? ReadAndRecordAsync(buffer, cancellationToken) : inner.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Record(buffer[..read]);
        return read;
    }

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer) => inner.Write(buffer);

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public override void Flush() => inner.Flush();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    private async ValueTask<int> ReadAndRecordAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Record(buffer.Span[..read]);
        return read;
    }

    private void Record(ReadOnlySpan<byte> read)
    {
        var count = _count;
        if (!_recording || count == Capacity || read.IsEmpty)
        {
            return;
        }

        var take = Math.Min(read.Length, Capacity - count);
        read[..take].CopyTo(_first.AsSpan(count));
        Volatile.Write(ref _count, count + take);
    }
}
