using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

namespace MailPipe.Sending;

/// <summary>
/// A message body on the wire, one type per framing (<see cref="DataBody"/>: dot-stuffed DATA; <see cref="ChunkedBody"/>:
/// BDAT chunks), chosen in one place (<see cref="TransactionSender"/>, from the capabilities and the envelope), over one
/// content-source loop: bytes, a sequence, a stream, a pipe reader (a content writer's run is one).
/// </summary>
/// <remarks>
/// One failure rule: only an exception thrown by the caller's content source (its read) is marked
/// <see cref="ContentSourceException"/> and so may become <see cref="SmtpErrorCode.ContentReadFailed"/>; an exception
/// of MailPipe's own code passes unchanged. A cancelled read (<see cref="PipeReader.CancelPendingRead"/>) is not the
/// end of the content: it is an <see cref="OperationCanceledException"/>, and the message is never ended.
/// </remarks>
internal abstract class MessageBody
{
    /// <summary>The size of the buffer a stream is read into.</summary>
    private const int StreamBufferSize = 64 * 1024;

    /// <summary>Line ends to CRLF, and dot-stuffing for DATA; its state carries across pieces.</summary>
    public SmtpDataEncoder Encoder { get; } = new();

    /// <summary>What streamed content is checked for (8-bit without 8BITMIME, NUL without BINARYMIME), set per message.</summary>
    private SmtpContentGuard _guard;

    /// <summary>The octets read from a streamed source (a stream, a pipe, a content writer) since <see cref="Begin"/>, before line-end conversion and dot-stuffing: the content's length for the measurements, without asking the source for it after the end of data.</summary>
    public long StreamedLength { get; private set; }

    /// <summary>Makes the body ready for the next message: encoder state reset, <paramref name="guard"/> applied to streamed content.</summary>
    protected void Begin(SmtpContentGuard guard, bool dotStuffing)
    {
        StreamedLength = 0;
        Encoder.Reset();
        Encoder.DotStuffing = dotStuffing;
        _guard = guard;
    }

    /// <summary>
    /// Reads the content from whichever source is given to its end, handing each piece to <see cref="WriteAsync(ReadOnlyMemory{byte})"/>.
    /// </summary>
    /// <returns>False when <see cref="WriteAsync(ReadOnlyMemory{byte})"/> stopped the copy (a refused chunk).</returns>
    protected ValueTask<bool> CopyAsync(ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader, CancellationToken cancellationToken) =>
        bytes is { } content ? CopyBytesAsync(content)
        : stream is not null ? CopyStreamAsync(stream, cancellationToken)
        : CopyReaderAsync(reader!, cancellationToken);

    /// <summary>
    /// Called before waiting for a read of streamed content that did not complete at once: a body sends what it has
    /// buffered, so that the transactions written before (a batch's other callers) are not held behind a slow source.
    /// </summary>
    /// <returns>A task that completes when that is done.</returns>
    protected virtual ValueTask BeforeContentWaitAsync() => ValueTask.CompletedTask;

    /// <summary>The largest piece of in-memory content handed to <see cref="WriteAsync(ReadOnlyMemory{byte})"/> at once.</summary>
    protected virtual int MaxPiece => int.MaxValue;

    /// <summary>Checks a piece of streamed content against the guard (in-memory content was checked before MAIL).</summary>
    /// <exception cref="SmtpContentRefusedException">The piece holds an octet the server cannot take.</exception>
    protected void Check(ReadOnlySpan<byte> piece) => _guard.Check(piece);

    /// <summary>Checks a sequence of streamed content against the guard.</summary>
    /// <exception cref="SmtpContentRefusedException">The sequence holds an octet the server cannot take.</exception>
    protected void Check(in ReadOnlySequence<byte> pieces) => _guard.Check(pieces);

    /// <summary>Takes the next piece of content (streamed pieces unchecked: see <see cref="Check(ReadOnlySpan{byte})"/>).</summary>
    /// <returns>False to stop the copy.</returns>
    protected abstract ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> piece);

    /// <summary>Takes what one read of a pipe gave; by default segment by segment.</summary>
    /// <returns>False to stop the copy.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected virtual async ValueTask<bool> WriteAsync(ReadOnlySequence<byte> pieces)
    {
        foreach (var segment in pieces)
        {
            if (!await WriteAsync(segment).ConfigureAwait(false))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>In memory: pieces of at most <see cref="MaxPiece"/>, so that a large segment is never buffered whole.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> CopyBytesAsync(ReadOnlySequence<byte> content)
    {
        foreach (var segment in content)
        {
            for (var rest = segment; !rest.IsEmpty; rest = rest[Math.Min(rest.Length, MaxPiece)..])
            {
                if (!await WriteAsync(rest[..Math.Min(rest.Length, MaxPiece)]).ConfigureAwait(false))
                {
                    return false;
                }
            }
        }

        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> CopyStreamAsync(Stream stream, CancellationToken cancellationToken)
    {
        byte[]? rented = ArrayPool<byte>.Shared.Rent(StreamBufferSize);
        try
        {
            while (true)
            {
                ValueTask<int> pending;
                try
                {
#pragma warning disable CA2012 // Consumed exactly once: awaited, or turned into a task (AsTask) that is awaited instead.
                    pending = stream.ReadAsync(rented.AsMemory(), cancellationToken);
#pragma warning restore CA2012
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new ContentSourceException(ex);
                }

                if (!pending.IsCompleted)
                {
                    await BeforeContentWaitAsync().ConfigureAwait(false);
                }

                Task<int>? waiting = null;
                if (!pending.IsCompleted && cancellationToken.CanBeCanceled)
                {
                    waiting = pending.AsTask();
                    if (!await WithinAsync(waiting, cancellationToken).ConfigureAwait(false))
                    {
                        // The source did not end its read when the token (the caller's, the message's or the
                        // connection's close) was cancelled: the read is left to it, and the buffer it is filling is
                        // never returned to the pool.
                        rented = null;
                        throw new OperationCanceledException("The message content's source did not end its read when the send was cancelled or its connection closed; the read was left to it.", cancellationToken);
                    }
                }

                int read;
                try
                {
                    read = waiting is null ? await pending.ConfigureAwait(false) : await waiting.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    throw new ContentSourceException(ex);
                }

                if (read <= 0)
                {
                    return true;
                }

                StreamedLength += read;

                if (!await WriteAsync(rented.AsMemory(0, read)).ConfigureAwait(false))
                {
                    return false;
                }
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Waits for a content read until <paramref name="cancellationToken"/> is cancelled, whether or not the source
    /// honours it (a stream built on a synchronous read does not; without this <c>DisconnectAsync</c> and the caller's
    /// cancellation would wait for the source for ever).
    /// </summary>
    /// <returns><see langword="false"/> when the read was given up (still pending, observed from now on); its outcome is taken by awaiting it otherwise.</returns>
    private static async ValueTask<bool> WithinAsync(Task<int> read, CancellationToken cancellationToken)
    {
        try
        {
            await read.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!read.IsCompleted)
        {
            _ = read.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            return false;
        }
        catch (Exception) when (read.IsCompleted)
        {
            // The read's own outcome (a result, its failure) is taken by the caller's await.
        }

        return true;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> CopyReaderAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result;
            ValueTask<ReadResult> pending;
            try
            {
                pending = reader.ReadAsync(cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ContentSourceException(ex);
            }

            if (!pending.IsCompleted)
            {
                await BeforeContentWaitAsync().ConfigureAwait(false);
            }

            try
            {
                result = await pending.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                throw new ContentSourceException(ex);
            }

            if (result.IsCanceled)
            {
                // CancelPendingRead is not the end of the content: the message must never be ended.
                reader.AdvanceTo(result.Buffer.Start);
                throw new OperationCanceledException("Reading the message content was cancelled (PipeReader.CancelPendingRead); the incomplete message is never ended.");
            }

            bool go;
            StreamedLength += result.Buffer.Length;
            try
            {
                go = await WriteAsync(result.Buffer).ConfigureAwait(false);
            }
            finally
            {
                reader.AdvanceTo(result.Buffer.End);
            }

            if (!go || result.IsCompleted)
            {
                return go;
            }
        }
    }
}
