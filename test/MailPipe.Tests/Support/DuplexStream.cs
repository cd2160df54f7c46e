using System.IO.Pipelines;
using System.Text;

namespace MailPipe.Tests.Support;

/// <summary>
/// The client's end of an in-memory connection: reads come from one pipe (what the server sends), writes go to the
/// other (what the server receives). Disposing it completes both, which the server sees as the client closing.
/// </summary>
/// <remarks>
/// It records where the client flushed (so that a server can tell which commands went out together, RFC 2920) and,
/// for each write, how many bytes the client had read by then (so that a server can tell whether a command was written
/// before or after the client read a reply), and every byte the client handed to a write, whether or not the server got
/// it (<see cref="HandedText"/>). <see cref="Reset"/> makes every later write fail like a reset connection;
/// a write after disposal fails with <see cref="ObjectDisposedException"/>, as on a closed network stream.
/// </remarks>
internal sealed class DuplexStream : Stream
{
    private readonly Stream _input;
    private readonly Stream _output;
    private readonly Lock _recordLock = new();
    private readonly List<long> _flushOffsets = [];
    private readonly List<(long Offset, long BytesReadBefore)> _writes = [];
    private readonly List<byte> _handed = [];
    private int _disposed;
    private int _reset;
    private long _bytesRead;
    private long _bytesWritten;

    public DuplexStream(PipeReader input, PipeWriter output)
    {
        _input = input.AsStream();
        _output = output.AsStream();
    }

    /// <summary>How many bytes the client has read so far.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>How many bytes the client has written so far.</summary>
    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>
    /// Every byte the client handed to a write so far, in order (Latin-1), including writes that never reached the server:
    /// a write whose token was already cancelled (a flush that began as the call was cancelled) is refused by the pipe.
    /// </summary>
    public string HandedText
    {
        get
        {
            lock (_recordLock)
            {
                return Encoding.Latin1.GetString([.. _handed]);
            }
        }
    }

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

    public override void Write(byte[] buffer, int offset, int count)
    {
        RecordWrite(buffer.AsSpan(offset, count));
        _output.Write(buffer, offset, count);
        ThrowIfReset();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        RecordWrite(buffer.Span);
        await _output.WriteAsync(buffer, cancellationToken);
        ThrowIfReset();
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Flush()
    {
        RecordFlush();
        _output.Flush();
    }

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        RecordFlush();
        return _output.FlushAsync(cancellationToken);
    }

    /// <summary>From now on every write fails with <see cref="IOException"/>, as on a connection reset by the peer.</summary>
    public void Reset() => Volatile.Write(ref _reset, 1);

    /// <summary>Whether the client flushed when exactly <paramref name="offset"/> bytes had been written (a flush between the byte before and the byte at that offset).</summary>
    public bool FlushedAt(long offset)
    {
        lock (_recordLock)
        {
            return _flushOffsets.Contains(offset);
        }
    }

    /// <summary>How many bytes the client had read when it wrote the byte at <paramref name="offset"/>.</summary>
    public long BytesReadBeforeWriting(long offset)
    {
        lock (_recordLock)
        {
            for (var i = _writes.Count - 1; i >= 0; i--)
            {
                if (_writes[i].Offset <= offset)
                {
                    return _writes[i].BytesReadBefore;
                }
            }
        }

        throw new InvalidOperationException($"No write covers offset {offset}.");
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    private void RecordWrite(ReadOnlySpan<byte> bytes)
    {
        var count = bytes.Length;
        // As a network stream: writing after the client closed its end fails (not the pipe's InvalidOperationException).
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        ThrowIfReset();
        lock (_recordLock)
        {
            if (count > 0)
            {
                _writes.Add((_bytesWritten, BytesRead));
                _handed.AddRange(bytes);
            }

            Interlocked.Add(ref _bytesWritten, count);
        }
    }

    private void RecordFlush()
    {
        ThrowIfReset();
        lock (_recordLock)
        {
            _flushOffsets.Add(_bytesWritten);
        }
    }

    private void ThrowIfReset()
    {
        if (Volatile.Read(ref _reset) != 0)
        {
            throw new IOException("Connection reset by peer (scripted).");
        }
    }

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
