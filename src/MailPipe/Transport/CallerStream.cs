using System.Buffers;
using System.Runtime.CompilerServices;

namespace MailPipe.Transport;

/// <summary>
/// A caller's stream (<c>ConnectAsync(Stream)</c>: a proxy tunnel, an in-memory server) as the connection uses it: a
/// read, write or flush ends when its token is cancelled (a deadline, the caller's cancellation, the connection's close),
/// whether or not the stream honours the token. A stream's cancellation is best effort (one built on a synchronous
/// <see cref="Stream.Read(byte[], int, int)"/> ignores the token once the read runs), and without this a timeout would
/// never fire and a <c>DisconnectAsync</c> whose dispose does not end the stream's pending read would leave the
/// operation waiting for ever.
/// </summary>
/// <remarks>
/// An operation given up so is left to the stream: its task is observed (never an unobserved exception) and its buffer
/// is a copy of MailPipe's own, never returned to the pool, so nothing the stream reads or writes later touches memory
/// in use elsewhere. The connection is closed after every cancellation (MailPipe never goes on reading or writing after
/// one), and any later call fails with <see cref="IOException"/> rather than running alongside the one given up.
/// </remarks>
internal sealed class CallerStream(Stream inner) : Stream
{
    private int _abandoned;

    /// <inheritdoc/>
    public override bool CanRead => inner.CanRead;

    /// <inheritdoc/>
    public override bool CanWrite => inner.CanWrite;

    /// <inheritdoc/>
    public override bool CanSeek => false;

    /// <inheritdoc/>
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc/>
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc/>
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfAbandoned();
        if (!cancellationToken.CanBeCanceled)
        {
            return inner.ReadAsync(buffer, cancellationToken);
        }

        var own = ArrayPool<byte>.Shared.Rent(buffer.Length);
        ValueTask<int> read;
        try
        {
            read = inner.ReadAsync(own.AsMemory(0, buffer.Length), cancellationToken);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(own);
            throw;
        }

        if (read is { IsCompletedSuccessfully: true, Result: var count })
        {
            own.AsSpan(0, count).CopyTo(buffer.Span);
            ArrayPool<byte>.Shared.Return(own);
            return new ValueTask<int>(count);
        }

        return FinishReadAsync(read.AsTask(), own, buffer, cancellationToken);
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    /// <inheritdoc/>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfAbandoned();
        if (!cancellationToken.CanBeCanceled)
        {
            return inner.WriteAsync(buffer, cancellationToken);
        }

        var own = ArrayPool<byte>.Shared.Rent(buffer.Length);
        buffer.Span.CopyTo(own);
        ValueTask write;
        try
        {
            write = inner.WriteAsync(own.AsMemory(0, buffer.Length), cancellationToken);
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(own);
            throw;
        }

        if (write.IsCompletedSuccessfully)
        {
            ArrayPool<byte>.Shared.Return(own);
            return ValueTask.CompletedTask;
        }

        return FinishWriteAsync(write.AsTask(), own, cancellationToken);
    }

    /// <inheritdoc/>
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);

    /// <inheritdoc/>
    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        ThrowIfAbandoned();
        var flush = inner.FlushAsync(cancellationToken);
        return flush.IsCompleted || !cancellationToken.CanBeCanceled ? flush : FinishFlushAsync(flush, cancellationToken);
    }

    /// <inheritdoc/>
    public override void Flush() => inner.Flush();

    /// <inheritdoc/>
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc/>
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> FinishReadAsync(Task<int> read, byte[] own, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        int count;
        try
        {
            count = await read.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!read.IsCompleted)
        {
            GiveUp(read);
            throw;
        }

        own.AsSpan(0, count).CopyTo(buffer.Span);
        ArrayPool<byte>.Shared.Return(own);
        return count;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FinishWriteAsync(Task write, byte[] own, CancellationToken cancellationToken)
    {
        try
        {
            await write.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!write.IsCompleted)
        {
            GiveUp(write);
            throw;
        }

        ArrayPool<byte>.Shared.Return(own);
    }

    private async Task FinishFlushAsync(Task flush, CancellationToken cancellationToken)
    {
        try
        {
            await flush.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!flush.IsCompleted)
        {
            GiveUp(flush);
            throw;
        }
    }

    /// <summary>Gives up an operation the token cancelled but the stream has not ended (see the remarks): it is observed, its buffer never reused, the stream refuses further calls.</summary>
    private void GiveUp(Task operation)
    {
        Volatile.Write(ref _abandoned, 1);
        _ = operation.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private void ThrowIfAbandoned()
    {
        if (Volatile.Read(ref _abandoned) != 0)
        {
            throw new IOException("The stream was given up after a cancellation left one of its operations pending; the connection is closed.");
        }
    }
}
