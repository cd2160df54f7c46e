using System.Buffers;
using System.Runtime.CompilerServices;

namespace MailPipe.Sending;

/// <summary>
/// One send's reading of a seekable content stream (<see cref="SmtpMessage.FromStream"/>): a position of its own, set on
/// the caller's stream before each read, under a gate that every send of that stream shares. Two sends of one stream at
/// the same time (one message on two connections of a shared sender, two messages made from one stream) each read the
/// whole message from its start; with the stream's one position they each sent part of it, and both were accepted.
/// </summary>
internal sealed class SeekableContent : Stream
{
    /// <summary>One gate per caller's stream, whichever messages and sends read it; gone with the stream.</summary>
    private static readonly ConditionalWeakTable<Stream, SemaphoreSlim> Gates = [];

    private readonly Stream _inner;
    private readonly SemaphoreSlim _gate;
    private long _position;

    /// <summary>Reads <paramref name="inner"/> from <paramref name="start"/>.</summary>
    public SeekableContent(Stream inner, long start)
    {
        _inner = inner;
        _position = start;
        _gate = Gates.GetValue(inner, static _ => new SemaphoreSlim(1, 1));
    }

    public override bool CanRead => true;

    public override bool CanSeek => true;

    public override bool CanWrite => false;

    public override long Length => _inner.Length;

    public override long Position
    {
        get => _position;
        set => _position = value;
    }

    /// <summary>
    /// The size SIZE declares for a <see cref="MemoryStream"/>'s text from here to its end (RFC 1870 §3, CRLF line ends):
    /// read now, under the gate (a memory stream's reads never wait, so neither does this for long).
    /// </summary>
    public long WireSize()
    {
        var counter = default(WireSizeCounter);
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        _gate.Wait();
        try
        {
            _inner.Position = _position;
            for (int read; (read = _inner.Read(buffer)) > 0;)
            {
                counter.Add(buffer.AsSpan(0, read));
            }
        }
        finally
        {
            _gate.Release();
            ArrayPool<byte>.Shared.Return(buffer);
        }

        return counter.Total;
    }

    /// <summary>Whether the caller's stream is a <see cref="MemoryStream"/> (its text is measured for SIZE).</summary>
    public bool IsMemory => _inner is MemoryStream;

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _inner.Position = _position;
            var read = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            _position += read;
            return read;
        }
        finally
        {
            _gate.Release();
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(Span<byte> buffer)
    {
        _gate.Wait();
        try
        {
            _inner.Position = _position;
            var read = _inner.Read(buffer);
            _position += read;
            return read;
        }
        finally
        {
            _gate.Release();
        }
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => Length + offset,
    };

    public override void Flush()
    {
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    // The caller's stream is the caller's: disposing this view (the session never does) leaves it open.
}
