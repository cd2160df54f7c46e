using System.IO.Pipelines;

namespace MailPipe.Tests.Support;

/// <summary>
/// The client's end of an in-memory connection: reads come from one pipe (what the server sends), writes go to the
/// other (what the server receives). Disposing it completes both, which the server sees as the client closing.
/// </summary>
internal sealed class DuplexStream : Stream
{
    private readonly Stream _input;
    private readonly Stream _output;
    private int _disposed;
    private long _bytesRead;

    public DuplexStream(PipeReader input, PipeWriter output)
    {
        _input = input.AsStream();
        _output = output.AsStream();
    }

    /// <summary>How many bytes the client has read so far.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Whether the client side has been disposed (the connection closed by the client).</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Count(_input.Read(buffer, offset, count));

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        Count(await _input.ReadAsync(buffer, cancellationToken));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _output.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _output.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _output.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private int Count(int read)
    {
        Interlocked.Add(ref _bytesRead, read);
        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _output.Dispose();
            _input.Dispose();
        }

        base.Dispose(disposing);
    }
}
