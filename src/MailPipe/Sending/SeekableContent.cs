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
    /// The size SIZE declares for a <see cref="MemoryStream"/>'s text from here to its end (RFC 1870 §3, CRLF line ends),
    /// measured on the bytes it holds (<see cref="MemoryStream.WriteTo"/>): the stream's position is not used, so no
    /// gate is taken. It was read under the gate with a blocking wait, on the send's asynchronous path: a send of the
    /// same stream inside an asynchronous read held its thread (and many such sends starved the thread pool).
    /// </summary>
    public long WireSize()
    {
        var counter = new WireSizeSink(_position);
        ((MemoryStream)_inner).WriteTo(counter);
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
        // Stream's synchronous contract, for a caller's own synchronous code (a content writer's CopyTo): MailPipe reads
        // through ReadAsync only. The gate is the one ReadAsync takes (another send may be reading the same stream).
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

    /// <summary>Counts the wire size of what is written to it, from <c>skip</c> bytes in (the message's start).</summary>
    private sealed class WireSizeSink(long skip) : Stream
    {
        private WireSizeCounter _counter;

        public long Total => _counter.Total;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            var skipped = (int)Math.Min(skip, buffer.Length);
            skip -= skipped;
            _counter.Add(buffer[skipped..]);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
