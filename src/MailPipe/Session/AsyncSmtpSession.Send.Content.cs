using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>Message content for DATA (dot-stuffed) and for BDAT (chunked, RFC 3030).</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>What streamed BDAT content is checked for (8-bit without 8BITMIME, NUL without BINARYMIME); set per message by <see cref="WriteChunksAsync"/>.</summary>
    private SmtpContentGuard _contentGuard;

    /// <summary>The transaction whose content is being written, when its message has a token of its own (<see cref="SmtpMessage.WithCancellation"/>).</summary>
    private volatile MailTransaction? _contentOf;

    /// <summary>
    /// Whether the content of the message carrying <paramref name="token"/> (<see cref="SmtpMessage.WithCancellation"/>)
    /// is being written, its end of data not yet (or its cancellation there was already handled): its cancellation is
    /// then handled by the send itself (BDAT: RSET between chunks; DATA: the connection closed). Safe from any thread
    /// (the shared sender asks it).
    /// </summary>
    internal bool IsWritingContentOf(CancellationToken token) => _contentOf is { } tx && tx.Message.CancellationToken == token;

    /// <summary>
    /// Writes the content with dot-stuffing and the end-of-data line (DATA). When the message's own token
    /// (<see cref="SmtpMessage.WithCancellation"/>) is cancelled while the content is written, the message cannot be
    /// abandoned but by closing the connection (never the final dot): its result is NotSent with an
    /// <see cref="OperationCanceledException"/>, and the <see cref="SmtpException"/> thrown stops the rest of the call
    /// (the transactions after it are NotSent, transient).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataContentAsync(MailTransaction tx, CancellationToken cancellationToken, ReplyPump? pump = null)
    {
        var messageToken = tx.Message.CancellationToken;
        if (!messageToken.CanBeCanceled)
        {
            _contentOf = null;
            await WriteDataContentCoreAsync(tx, pump, cancellationToken).ConfigureAwait(false);
            return;
        }

        // The content source is read with the message's token too (in-memory content is checked before its end).
        using var linked = tx.Message.Bytes is null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, messageToken) : null;
        _contentOf = tx;
        try
        {
            await WriteDataContentCoreAsync(tx, pump, linked?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (messageToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !tx.EndOfDataWritten)
        {
            tx.NotAttempted = new OperationCanceledException("The message was cancelled (its own token) while its content was being written; the connection was closed without ending it (DATA allows no other way), so nothing of it was delivered.", ex, messageToken);
            Break("a message was cancelled while its content was being written (DATA)");
            throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed because a message before this one was cancelled while its content was being written (with DATA the only way to abandon it); this message was not sent.", ex);
        }
        finally
        {
            if (tx.NotAttempted is null)
            {
                // Ended (or failed otherwise); a message cancelled here stays known as handled, for the sender's question.
                _contentOf = null;
            }
        }
    }

    /// <summary>Writes the content with dot-stuffing and the end-of-data line (DATA). Sets <see cref="MailTransaction.EndOfDataWritten"/> before the end goes out.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteDataContentCoreAsync(MailTransaction tx, ReplyPump? pump, CancellationToken cancellationToken)
    {
        _dataEncoder.Reset();
        _dataEncoder.DotStuffing = true;
        _dataBytes = 0;
        var message = tx.Message;
        if (message.Bytes is { } bytes)
        {
            await WriteEncodedAsync(bytes).ConfigureAwait(false);
        }
        else
        {
            var reader = SmtpContentRules.Plan(tx.Envelope.Body, null, chunking: false, Capabilities).Guard.Wrap(message.Reader ?? PipeReader.Create(message.Stream!, new StreamPipeReaderOptions(bufferSize: 64 * 1024, leaveOpen: true)));
            try
            {
                await CopyContentAsync(reader, cancellationToken, markSourceFailures: true).ConfigureAwait(false);
            }
            finally
            {
                if (message.Reader is null)
                {
                    await reader.CompleteAsync().ConfigureAwait(false);
                }
            }
        }

        // Never the final dot for a message cancelled meanwhile.
        tx.Message.CancellationToken.ThrowIfCancellationRequested();
        CheckUnsolicited();
        tx.EndOfDataWritten = true;
        _dataEncoder.Complete(Connection.Output);
        Log.MessageData(_protocolLog, _dataBytes);
        Log.ClientLine(_protocolLog, ".");
        ExpectReply("end of data");
        if (pump is not null)
        {
            Expect(pump, new ExpectedReply(tx, ReplyKind.EndOfData, 0));
        }
    }

    /// <summary>Dot-stuffs an in-memory content into the output, flushing every <see cref="SmtpSessionOptions.DataFlushThreshold"/> bytes (DATA; shared by <c>SendMessageDataAsync</c> and <c>SendAsync</c>).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteEncodedAsync(ReadOnlySequence<byte> content)
    {
        foreach (var segment in content)
        {
            var memory = segment;
            while (!memory.IsEmpty)
            {
                var piece = memory.Length > _options.DataFlushThreshold ? memory[.._options.DataFlushThreshold] : memory;
                _dataEncoder.Write(piece.Span, Connection.Output);
                _dataBytes += piece.Length;
                memory = memory[piece.Length..];
                await FlushIfNeededAsync("sending message data").ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Writes the content as BDAT chunks. When the message's own token (<see cref="SmtpMessage.WithCancellation"/>)
    /// is cancelled while the content is written, the transaction is reset with RSET between chunks (RFC 3030 §2: the
    /// chunks sent are discarded; never BDAT LAST) and the connection is kept: its result is NotSent with an
    /// <see cref="OperationCanceledException"/>, the other transactions of the call go on untouched.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteChunksAsync(MailTransaction tx, ReplyPump? pump, CancellationToken cancellationToken)
    {
        var messageToken = tx.Message.CancellationToken;
        if (!messageToken.CanBeCanceled)
        {
            _contentOf = null;
            await WriteChunksCoreAsync(tx, pump, cancellationToken).ConfigureAwait(false);
            return;
        }

        // The content source is read with the message's token too (in-memory content is checked between chunks).
        using var linked = tx.Message.Bytes is null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, messageToken) : null;
        _contentOf = tx;
        try
        {
            await WriteChunksCoreAsync(tx, pump, linked?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (messageToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !tx.EndOfDataWritten)
        {
            // Between chunks the wire is at a command boundary.
            tx.NotAttempted = new OperationCanceledException("The message was cancelled (its own token) while its content was being written; the transaction was reset with RSET between chunks and nothing of it was delivered.", ex, messageToken);
            _chunkBuffer?.ResetWrittenCount();
            if (pump is not null)
            {
                WriteCommand(RsetVerb, "RSET");
                Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
            }
            else
            {
                await ResetTransactionAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            if (tx.NotAttempted is null)
            {
                // Ended (or failed otherwise); a message cancelled here stays known as handled, for the sender's question.
                _contentOf = null;
            }
        }
    }

    /// <summary>
    /// Writes the content as BDAT chunks (RFC 3030 §2): line ends normalised to CRLF and a final CRLF added (no
    /// dot-stuffing), or bytes unchanged for BINARYMIME. Chunks are formed as the content streams in; the last one
    /// carries LAST (possibly <c>BDAT 0 LAST</c>). With a pump the replies are read concurrently; without one each
    /// chunk's reply is awaited and a negative one stops the chunks.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteChunksCoreAsync(MailTransaction tx, ReplyPump? pump, CancellationToken cancellationToken)
    {
        var buffer = _chunkBuffer ??= new ArrayBufferWriter<byte>(_options.ChunkSize + 1024);
        buffer.ResetWrittenCount();
        var plan = SmtpContentRules.Plan(tx.Envelope.Body, tx.Message.Bytes, chunking: true, Capabilities);
        (var binary, _contentGuard) = (plan.Body == SmtpBodyType.BinaryMime, plan.Guard);
        _dataEncoder.Reset();
        _dataEncoder.DotStuffing = false;
        var message = tx.Message;

        // Set when a chunk was refused (without PIPELINING): no further chunk of this transaction may be sent.
        var stopped = false;
        if (message.Bytes is { } bytes)
        {
            foreach (var segment in bytes)
            {
                if (!stopped)
                {
                    stopped = await AppendChunkedAsync(tx, buffer, segment, binary, pump).ConfigureAwait(false);
                }
            }
        }
        else
        {
            try
            {
                if (message.Stream is { } stream)
                {
                    var rented = ArrayPool<byte>.Shared.Rent(64 * 1024);
                    try
                    {
                        while (!stopped)
                        {
                            int read;
                            try
                            {
                                read = await stream.ReadAsync(rented.AsMemory(), cancellationToken).ConfigureAwait(false);
                            }
                            catch (Exception ex) when (ex is not OperationCanceledException)
                            {
                                throw new ContentSourceException(ex);
                            }

                            if (read <= 0)
                            {
                                break;
                            }

                            stopped = await AppendChunkedAsync(tx, buffer, rented.AsMemory(0, read), binary, pump).ConfigureAwait(false);
                        }
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(rented);
                    }
                }
                else
                {
                    var reader = message.Reader!;
                    while (!stopped)
                    {
                        ReadResult result;
                        try
                        {
                            result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                        }
                        catch (Exception ex) when (ex is not OperationCanceledException)
                        {
                            throw new ContentSourceException(ex);
                        }

                        if (result.IsCanceled)
                        {
                            // CancelPendingRead is not the end of the content: never send BDAT LAST for an incomplete message.
                            reader.AdvanceTo(result.Buffer.Start);
                            throw new OperationCanceledException("Reading the message content was cancelled (PipeReader.CancelPendingRead).");
                        }

                        foreach (var segment in result.Buffer)
                        {
                            if (!stopped)
                            {
                                stopped = await AppendChunkedAsync(tx, buffer, segment, binary, pump).ConfigureAwait(false);
                            }
                        }

                        reader.AdvanceTo(result.Buffer.End);
                        if (result.IsCompleted)
                        {
                            break;
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is ContentSourceException or SmtpContentRefusedException)
            {
                // Any failure of the caller's content source (ObjectDisposedException and InvalidOperationException
                // included) leaves the transaction half-sent; an exception of MailPipe's own is never taken for one.
                // Between chunks the wire is at a command boundary: abort this transaction with RSET (RFC 3030 §2
                // chunks already sent are discarded) and carry on with the rest of the batch.
                // The content guard's refusal of an octet the server cannot take (#17) is handled the same way.
                tx.ContentFailure = SmtpContentRules.Failure(ex is ContentSourceException marked ? marked.SourceException : ex, "the transaction was reset and nothing was delivered.");
                buffer.ResetWrittenCount();
                if (pump is not null)
                {
                    WriteCommand(RsetVerb, "RSET");
                    Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
                }
                else
                {
                    await ResetTransactionAsync().ConfigureAwait(false);
                }

                return;
            }
        }

        if (stopped)
        {
            return;
        }

        if (!binary)
        {
            _dataEncoder.CompleteLine(buffer);
        }

        // Never BDAT LAST for a message cancelled meanwhile.
        tx.Message.CancellationToken.ThrowIfCancellationRequested();
        tx.EndOfDataWritten = true;
        await EmitChunkAsync(tx, buffer, last: true, pump).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds content to the chunk being formed (line ends normalised unless <paramref name="binary"/>), writing a chunk
    /// each time it is full. A method of its own rather than a local function, whose captured state would be
    /// allocated on every message.
    /// </summary>
    /// <returns>Whether a chunk was refused, so that no further chunk of this transaction may be sent.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> AppendChunkedAsync(MailTransaction tx, ArrayBufferWriter<byte> buffer, ReadOnlyMemory<byte> input, bool binary, ReplyPump? pump)
    {
        while (!input.IsEmpty)
        {
            var room = Math.Max(1, _options.ChunkSize - buffer.WrittenCount);
            var piece = input.Length > room ? input[..room] : input;
            _contentGuard.Check(piece.Span);
            if (binary)
            {
                buffer.Write(piece.Span);
            }
            else
            {
                _dataEncoder.Write(piece.Span, buffer);
            }

            input = input[piece.Length..];
            if (buffer.WrittenCount >= _options.ChunkSize)
            {
                // A message cancelled meanwhile is reset before its next chunk.
                tx.Message.CancellationToken.ThrowIfCancellationRequested();
                if (!await EmitChunkAsync(tx, buffer, last: false, pump).ConfigureAwait(false))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Writes one BDAT chunk; without a pump, reads its reply and returns false when it is negative.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> EmitChunkAsync(MailTransaction tx, ArrayBufferWriter<byte> buffer, bool last, ReplyPump? pump)
    {
        CheckUnsolicited();
        var output = Connection.Output;
        var length = buffer.WrittenCount;
        SmtpCommandWriter.WriteBdat(output, length, last);
        output.Write(buffer.WrittenSpan);
        buffer.ResetWrittenCount();
        ExpectReply("BDAT");
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            // The header as a string only for the transcript.
            Log.ClientLine(_protocolLog, last ? $"BDAT {length} LAST" : $"BDAT {length}");
        }

        Log.MessageData(_protocolLog, length);
        if (pump is not null)
        {
            Expect(pump, new ExpectedReply(tx, last ? ReplyKind.LastChunk : ReplyKind.Chunk, 0));
            await FlushIfNeededAsync("sending BDAT chunks").ConfigureAwait(false);
            return !pump.Stopped;
        }

        var reply = BreakIfServiceClosing(await FlushAndReadAsync(last ? _options.DataTerminationTimeout : _options.ReceiveTimeout, "sending BDAT").ConfigureAwait(false));
        if (last)
        {
            tx.FinalReply = reply;
            return true;
        }

        if (reply.IsNegative)
        {
            // RFC 3030 §2: after a negative reply to BDAT, no further chunk of this transaction may be sent.
            tx.DataReply ??= reply;
            return false;
        }

        return true;
    }
}
