using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Transmission;

/// <summary>
/// A stream given to <c>ConnectAsync(Stream)</c> that behaves legally but unusually, over a scripted server's
/// <see cref="DuplexStream"/>: reads of at most <see cref="ReadLimit"/> bytes, tokens ignored (cancellation is best
/// effort for a <see cref="Stream"/>), a <see cref="Dispose(bool)"/> that throws or that does not end a pending read, a
/// write that throws an arbitrary exception, a <see cref="FlushAsync(CancellationToken)"/> that throws or does nothing.
/// </summary>
internal sealed class Breaker22OddStream(DuplexStream inner) : Stream
{
    private readonly TaskCompletionSource _readsFail = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposeCalls;

    /// <summary>Reads return at most this many bytes (0: as many as the buffer takes).</summary>
    public int ReadLimit { get; init; }

    /// <summary>Reads are given <see cref="CancellationToken.None"/> instead of the caller's token.</summary>
    public bool IgnoreReadToken { get; init; }

    /// <summary>Writes and flushes are given <see cref="CancellationToken.None"/> instead of the caller's token.</summary>
    public bool IgnoreWriteToken { get; init; }

    /// <summary>Whether disposing this stream disposes the inner one (false: a pending read goes on until the server sends or closes).</summary>
    public bool DisposeEndsReads { get; init; } = true;

    /// <summary>Thrown by <see cref="Dispose(bool)"/> (after the inner stream was disposed, if it is).</summary>
    public Exception? DisposeFailure { get; init; }

    /// <summary>A write whose bytes contain this text throws <see cref="WriteFailure"/> instead of writing anything.</summary>
    public string? FailWriteContaining { get; init; }

    /// <summary>What a write containing <see cref="FailWriteContaining"/> throws.</summary>
    public Exception WriteFailure { get; init; } = new InvalidOperationException("Breaker22: the tunnel refused the write.");

    /// <summary>What <see cref="FlushAsync(CancellationToken)"/> does.</summary>
    public Breaker22FlushMode FlushMode { get; init; }

    /// <summary>What a read throws after <see cref="FailReads"/> (an <see cref="IOException"/> by default).</summary>
    public Func<Exception> ReadFailure { get; init; } = static () => new IOException("Breaker22: the tunnel broke under the read.");

    /// <summary>How many times Dispose was called.</summary>
    public int DisposeCalls => Volatile.Read(ref _disposeCalls);

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    /// <summary>From now on the pending read (and every later one) fails with <see cref="ReadFailure"/>.</summary>
    public void FailReads() => _readsFail.TrySetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var limited = ReadLimit > 0 && buffer.Length > ReadLimit ? buffer[..ReadLimit] : buffer;
        var read = inner.ReadAsync(limited, IgnoreReadToken ? CancellationToken.None : cancellationToken).AsTask();
        if (await Task.WhenAny(read, _readsFail.Task) != read)
        {
            _ = read.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            throw ReadFailure();
        }

        return await read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (FailWriteContaining is { } marker && Encoding.Latin1.GetString(buffer.Span).Contains(marker, StringComparison.Ordinal))
        {
            throw WriteFailure;
        }

        return inner.WriteAsync(buffer, IgnoreWriteToken ? CancellationToken.None : cancellationToken);
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("async only");

    public override Task FlushAsync(CancellationToken cancellationToken) => FlushMode switch
    {
        Breaker22FlushMode.Throws => throw new NotSupportedException("Breaker22: this tunnel has no flush."),
        Breaker22FlushMode.Nothing => Task.CompletedTask,
        _ => inner.FlushAsync(IgnoreWriteToken ? CancellationToken.None : cancellationToken),
    };

    public override void Flush() => throw new NotSupportedException("async only");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Interlocked.Increment(ref _disposeCalls);
            if (DisposeEndsReads)
            {
                inner.Dispose();
            }

            if (DisposeFailure is { } failure)
            {
                throw failure;
            }
        }

        base.Dispose(disposing);
    }
}

/// <summary>What <see cref="Breaker22OddStream.FlushAsync(CancellationToken)"/> does.</summary>
internal enum Breaker22FlushMode
{
    /// <summary>Flushes the inner stream.</summary>
    Normal,

    /// <summary>Throws <see cref="NotSupportedException"/>.</summary>
    Throws,

    /// <summary>Returns at once without doing anything.</summary>
    Nothing,
}
