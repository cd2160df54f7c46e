namespace MailPipe.Tests.Support;

/// <summary>
/// A non-seekable content stream that gives <paramref name="prefix"/> (as much as each read asks for) and then fails,
/// like a file on a broken disk: with <paramref name="failure"/>, or an <see cref="IOException"/> saying
/// <see cref="FailureMessage"/>.
/// </summary>
internal sealed class FailingStream(byte[] prefix, Exception? failure = null) : Stream
{
    public const string FailureMessage = "disk gone";
    private int _position;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position >= prefix.Length)
        {
            throw failure ?? new IOException(FailureMessage);
        }

        var count = Math.Min(buffer.Length, prefix.Length - _position);
        prefix.AsSpan(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
