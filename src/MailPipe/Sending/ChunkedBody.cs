using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>
/// The BDAT body (RFC 3030 §2): line ends normalised to CRLF and a final CRLF added (no dot-stuffing), or bytes
/// unchanged for BINARYMIME; chunks of <see cref="SmtpSessionOptions.ChunkSize"/> formed as the content streams in,
/// the last one carrying LAST (<c>BDAT 0 LAST</c> only for empty content: a full chunk is held until more content
/// follows, so that the last full one carries LAST). What happens after each chunk (its reply read at once, or
/// later) is the transaction sender's.
/// </summary>
internal sealed class ChunkedBody(TransactionSender sender, SmtpChannel channel, SmtpSessionOptions options) : MessageBody
{
    private ArrayBufferWriter<byte>? _buffer;
    private MailTransaction? _tx;
    private bool _binary;

    /// <summary>Whether no chunk of the transaction has been written yet.</summary>
    private bool _first;

    /// <summary>
    /// Writes <paramref name="tx"/>'s content as chunks. A failure of the caller's content source (or the guard's
    /// refusal of an octet the server cannot take) between chunks resets the transaction with RSET: chunks already
    /// sent are discarded (RFC 3030 §2), nothing is delivered, and the rest of the batch goes on.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WriteAsync(MailTransaction tx, SmtpContentPlan plan, CancellationToken cancellationToken)
    {
        // Grown as the chunk fills: a huge ChunkSize (up to int.MaxValue) is not allocated before the first byte.
        var buffer = _buffer ??= new ArrayBufferWriter<byte>(Math.Min(options.ChunkSize, 256 * 1024) + 1024);
        buffer.ResetWrittenCount();
        (_tx, _binary, _first) = (tx, plan.Body == SmtpBodyType.BinaryMime, true);
        Begin(plan.Guard, dotStuffing: false);
        var message = tx.Message;
        try
        {
            if (!await CopyAsync(message.Bytes, message.Stream, message.Reader, cancellationToken).ConfigureAwait(false))
            {
                return; // a chunk was refused, or no recipient was: no (further) chunk of this transaction may be sent
            }

            tx.ContentRead(StreamedLength);
        }
        catch (Exception ex) when (ex is ContentSourceException or SmtpContentRefusedException)
        {
            tx.Stop(TransactionStop.ContentFailed, SmtpContentRules.Failure(ContentSourceException.Reported(ex), "the transaction was reset and nothing was delivered."));
            buffer.ResetWrittenCount();
            await sender.ResetAsync().ConfigureAwait(false);
            return;
        }
        finally
        {
            _tx = null;
        }

        if (!_binary)
        {
            Encoder.CompleteLine(buffer);
        }

        // Never BDAT LAST for a message cancelled meanwhile.
        message.CancellationToken.ThrowIfCancellationRequested();
        channel.ThrowIfEndOfDataCannotGoOut();
        sender.ThrowIfCallCancelled(cancellationToken);
        tx.EndOfDataWritten = true;
        sender.EndOfDataBuffered(tx);
        await EmitAsync(tx, last: true).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>Only whole commands and chunks are in the channel's output (the chunk being formed is in its own buffer).</remarks>
    protected override ValueTask BeforeContentWaitAsync() =>
        channel.Output is { CanGetUnflushedBytes: true, UnflushedBytes: 0 } ? ValueTask.CompletedTask : channel.FlushAsync("sending message data");

    /// <summary>Drops the chunk being formed (the transaction is reset).</summary>
    public void Discard() => _buffer?.ResetWrittenCount();

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected override async ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> piece)
    {
        var buffer = _buffer!;
        while (!piece.IsEmpty)
        {
            // A full chunk goes out only once more content follows it: content of exactly ChunkSize (or a multiple)
            // ends with its last full chunk as BDAT n LAST, never an empty BDAT 0 LAST after it, and a message of one
            // chunk stays pipelined with its envelope. Nothing is read ahead for this: the piece is already here.
            if (buffer.WrittenCount >= options.ChunkSize)
            {
                // A message cancelled meanwhile (its own token) is reset before its next chunk.
                _tx!.Message.CancellationToken.ThrowIfCancellationRequested();

                // The first of several chunks: the sender may wait for the RCPT replies, and send none to nobody.
                if (_first && !await sender.BeforeSeveralChunksAsync(_tx).ConfigureAwait(false))
                {
                    return false;
                }

                _first = false;
                if (!await EmitAsync(_tx, last: false).ConfigureAwait(false))
                {
                    return false;
                }
            }

            var room = Math.Max(1, options.ChunkSize - buffer.WrittenCount);
            var part = piece.Length > room ? piece[..room] : piece;
            Check(part.Span);
            if (_binary)
            {
                buffer.Write(part.Span);
            }
            else
            {
                Encoder.Write(part.Span, buffer);
            }

            piece = piece[part.Length..];
        }

        return true;
    }

    /// <summary>Writes one chunk (header, then the bytes) and appends its queue entry.</summary>
    /// <returns>Whether further chunks may follow.</returns>
    private ValueTask<bool> EmitAsync(MailTransaction tx, bool last)
    {
        channel.CheckUnsolicited();
        var buffer = _buffer!;
        var output = channel.Output;
        var length = buffer.WrittenCount;
        SmtpCommandWriter.WriteBdat(output, length, last);
        output.Write(buffer.WrittenSpan);
        buffer.ResetWrittenCount();
        channel.ExpectReply(last ? ReplyRules.LastChunk : "BDAT");
        if (channel.ProtocolLog.IsEnabled(LogLevel.Trace))
        {
            // The header as a string only for the transcript.
            Log.ClientLine(channel.ProtocolLog, last ? $"BDAT {length} LAST" : $"BDAT {length}");
        }

        Log.MessageData(channel.ProtocolLog, length);
        return sender.ChunkWrittenAsync(tx, last);
    }
}
