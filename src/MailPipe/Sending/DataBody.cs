using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;

using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>
/// The DATA body (RFC 5321 §4.1.1.4, §4.5.2): line ends normalised to CRLF, a leading dot doubled, ended by
/// <c>.</c> CRLF; flushed every <see cref="SmtpSessionOptions.DataFlushThreshold"/> bytes. Used by the transaction
/// sender after 354, and by the session's own DATA commands (<c>WriteMessageDataAsync</c>, <c>SendMessageDataAsync</c>).
/// </summary>
internal sealed class DataBody(SmtpChannel channel, SmtpSessionOptions options) : MessageBody
{
    /// <summary>The content bytes given since <see cref="Begin"/> (for the transcript).</summary>
    private long _bytes;

    /// <summary>Starts a message's content (after 354); <paramref name="guard"/> checks streamed content.</summary>
    public void Begin(SmtpContentGuard guard = default)
    {
        Begin(guard, dotStuffing: true);
        _bytes = 0;
    }

    /// <summary>Writes content from whichever source is given (see <see cref="MessageBody"/> for the failure rule).</summary>
    public ValueTask<bool> WriteContentAsync(ReadOnlySequence<byte>? bytes, Stream? stream, PipeReader? reader, CancellationToken cancellationToken) =>
        CopyAsync(bytes, stream, reader, cancellationToken);

    /// <summary>Writes the end of data (a CRLF first when the content did not end a line) and appends its queue entry; <paramref name="tx"/>'s <see cref="MailTransaction.EndOfDataWritten"/> is set before the end goes out.</summary>
    public void WriteEnd(MailTransaction? tx)
    {
        channel.CheckUnsolicited();
        if (tx is not null)
        {
            channel.ThrowIfEndOfDataCannotGoOut();
            tx.EndOfDataWritten = true;
        }

        Encoder.Complete(channel.Output);
        Log.MessageData(channel.ProtocolLog, _bytes);
        Log.ClientLine(channel.ProtocolLog, ".");
        channel.ExpectReply("end of data");
    }

    /// <inheritdoc/>
    protected override int MaxPiece => options.DataFlushThreshold;

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected override async ValueTask<bool> WriteAsync(ReadOnlyMemory<byte> piece)
    {
        Check(piece.Span);
        Encoder.Write(piece.Span, channel.Output);
        _bytes += piece.Length;
        await channel.FlushIfNeededAsync("sending message data").ConfigureAwait(false);
        return true;
    }

    /// <inheritdoc/>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    protected override async ValueTask<bool> WriteAsync(ReadOnlySequence<byte> pieces)
    {
        Check(pieces);
        Encoder.Write(pieces, channel.Output);
        _bytes += pieces.Length;
        await channel.FlushIfNeededAsync("sending message data").ConfigureAwait(false);
        return true;
    }
}
