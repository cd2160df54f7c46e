using System.Runtime.CompilerServices;

namespace MailPipe.Sending;

/// <summary>
/// The body of a transaction (DATA or BDAT, chosen by the call) and the message's own cancellation while it is written
/// (<see cref="SmtpMessage.WithCancellation"/>): never the end of data for a cancelled message.
/// </summary>
internal sealed partial class TransactionSender
{
    /// <summary>The transaction whose content is being written, when its message has a token of its own.</summary>
    private volatile MailTransaction? _contentOf;

    /// <summary>
    /// Whether the content of the message carrying <paramref name="token"/> is being written, its end of data not yet
    /// (or its cancellation there was already handled): its cancellation is then handled by the send itself (BDAT: RSET
    /// between chunks; DATA: the connection closed). Safe from any thread (the shared sender asks it).
    /// </summary>
    public bool IsWritingContentOf(CancellationToken token) => _contentOf is { } tx && tx.Message.CancellationToken == token;

    /// <summary>
    /// Writes <paramref name="tx"/>'s content with the framing of the call. When the message's own token is cancelled
    /// meanwhile, the message is never ended and its result is NotSent with an <see cref="OperationCanceledException"/>:
    /// with BDAT the transaction is reset with RSET between chunks (RFC 3030 §2) and the connection kept; with DATA the
    /// connection is closed (the only way to abandon a message without its final dot) and the
    /// <see cref="SmtpException"/> thrown stops the rest of the call (NotSent, transient).
    /// </summary>
    private ValueTask WriteBodyAsync(MailTransaction tx, SmtpContentPlan plan, CancellationToken cancellationToken)
    {
        if (tx.Message.CancellationToken.CanBeCanceled)
        {
            return WriteCancellableBodyAsync(tx, plan, cancellationToken);
        }

        _contentOf = null;
        return tx.Message.Bytes is null ? WriteSourceBodyAsync(tx, plan, cancellationToken) : WriteBodyCoreAsync(tx, plan, cancellationToken);
    }

    /// <summary>
    /// Writes the content of the caller's source (a stream, a pipe, a writer) with the connection's closing linked in:
    /// a session closed meanwhile (<c>DisconnectAsync</c>, <c>Dispose</c>, a break) ends a read that waits for the
    /// source, as the closed connection (<see cref="SmtpErrorCode.ConnectionClosed"/>, never the final dot) rather
    /// than a wait for ever or the caller's cancellation.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteSourceBodyAsync(MailTransaction tx, SmtpContentPlan plan, CancellationToken cancellationToken)
    {
        var closed = _channel.ConnectionClosed;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, closed);
        try
        {
            await WriteBodyCoreAsync(tx, plan, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (closed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw ClosedWhileReadingContent(ex);
        }
    }

    private static SmtpException ClosedWhileReadingContent(Exception ex) =>
        new(SmtpErrorCode.ConnectionClosed, "The connection was closed (DisconnectAsync, Dispose or a failure) while a message's content was being read; that message was not ended, and no message whose end of data had not been written was delivered.", ex);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteCancellableBodyAsync(MailTransaction tx, SmtpContentPlan plan, CancellationToken cancellationToken)
    {
        var messageToken = tx.Message.CancellationToken;

        // The content source is read with the message's token and the connection's closing too (in-memory content is
        // checked between chunks and before its end).
        var closed = tx.Message.Bytes is null ? _channel.ConnectionClosed : default;
        using var linked = tx.Message.Bytes is null ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, messageToken, closed) : null;
        _contentOf = tx;
        try
        {
            await WriteBodyCoreAsync(tx, plan, linked?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (messageToken.IsCancellationRequested && !cancellationToken.IsCancellationRequested && !tx.EndOfDataWritten)
        {
            if (!_chunking)
            {
                tx.Stop(TransactionStop.Cancelled, new OperationCanceledException("The message was cancelled (its own token) while its content was being written; the connection was closed without ending it (DATA allows no other way), so nothing of it was delivered.", ex, messageToken));
                _channel.Break("a message was cancelled while its content was being written (DATA)");
                throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed because a message before this one was cancelled while its content was being written (with DATA the only way to abandon it); this message was not sent.", ex);
            }

            // Between chunks the wire is at a command boundary.
            tx.Stop(TransactionStop.Cancelled, new OperationCanceledException("The message was cancelled (its own token) while its content was being written; the transaction was reset with RSET between chunks and nothing of it was delivered.", ex, messageToken));
            _chunks.Discard();
            await ResetAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (closed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw ClosedWhileReadingContent(ex);
        }
        finally
        {
            if (!tx.IsWithdrawn)
            {
                // Ended (or failed otherwise); a message cancelled here stays known as handled, for the sender's question.
                _contentOf = null;
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WriteBodyCoreAsync(MailTransaction tx, SmtpContentPlan plan, CancellationToken cancellationToken)
    {
        if (_chunking)
        {
            await _chunks.WriteAsync(tx, plan, cancellationToken).ConfigureAwait(false);
            return;
        }

        Data.Begin(plan.Guard);
        var message = tx.Message;
        await Data.WriteContentAsync(message.Bytes, message.Stream, message.Reader, cancellationToken).ConfigureAwait(false);
        tx.ContentRead(Data.StreamedLength);

        // Never the final dot for a message cancelled meanwhile, nor for a call cancelled meanwhile (in-memory content
        // is written without a wait that would see the caller's token): the message is then NotSent, not Unknown.
        message.CancellationToken.ThrowIfCancellationRequested();
        ThrowIfCallCancelled(cancellationToken);
        Data.WriteEnd(tx);
        EndOfDataBuffered(tx);
        Expect(new ExpectedReply(tx, ReplyKind.EndOfData, 0));
    }

    /// <summary>
    /// Before an end of data: the call's token (possibly linked with the connection's closing) is cancelled. A closed
    /// connection is reported as such (<see cref="SmtpErrorCode.ConnectionClosed"/>); else the cancellation is thrown.
    /// </summary>
    internal void ThrowIfCallCancelled(CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            _channel.ThrowIfEndOfDataCannotGoOut();
            cancellationToken.ThrowIfCancellationRequested();
        }
    }

    /// <summary>
    /// The transactions whose end of data was written into the output since the flush count stood at
    /// <see cref="_unflushedEndsMark"/> (<see cref="Transmission.SmtpChannel.FlushesStarted"/>): in the buffer only,
    /// unless a flush began since.
    /// </summary>
    private readonly List<MailTransaction> _unflushedEnds = [];

    private long _unflushedEndsMark = -1;

    /// <summary>Records that <paramref name="tx"/>'s end of data has just been written into the output (<see cref="ForgetEndsNeverSent"/>).</summary>
    internal void EndOfDataBuffered(MailTransaction tx)
    {
        var flushes = _channel.FlushesStarted;
        if (flushes != _unflushedEndsMark)
        {
            _unflushedEnds.Clear();
            _unflushedEndsMark = flushes;
        }

        _unflushedEnds.Add(tx);
    }

    /// <summary>
    /// The connection is closed, or is about to be closed by this flow with nothing flushed before: an end of data
    /// written with no flush begun since was only ever in the output buffer, which the close drops (the transport never
    /// had a byte of it), so its message is not sent rather than of unknown outcome. Any flush begun since (even one
    /// cancelled or failed) may have sent it: those stay Unknown.
    /// </summary>
    private void ForgetEndsNeverSent(bool closing)
    {
        if ((closing || !_channel.IsOpen) && _channel.FlushesStarted == _unflushedEndsMark)
        {
            foreach (var tx in _unflushedEnds)
            {
                if (tx.FinalReply is null)
                {
                    tx.EndOfDataWritten = false;
                }
            }
        }

        _unflushedEnds.Clear();
        _unflushedEndsMark = -1;
    }

    /// <summary>The message's own token (<see cref="SmtpMessage.WithCancellation"/>) is cancelled: the transaction is not attempted, nothing of it is written.</summary>
    private static bool IsCancelledBeforeStart(MailTransaction tx)
    {
        var token = tx.Message.CancellationToken;
        if (!token.IsCancellationRequested)
        {
            return false;
        }

        tx.Stop(TransactionStop.NotAttempted, new OperationCanceledException("The message was cancelled (its own token) before its transaction started; nothing of it was sent.", token));
        return true;
    }

    /// <summary>An exception from the caller's content source: only those are marked so (never one of MailPipe's own, never a cancellation).</summary>
    private static bool IsContentFailure(Exception exception) => exception is ContentSourceException or SmtpContentRefusedException;

    /// <summary>The content could not be read: the message was never ended (the connection is closed so that it cannot be), and the batch's results are kept.</summary>
    private SmtpException ContentFailure(Exception exception)
    {
        _channel.Break("reading the message content failed");
        return SmtpContentRules.Failure(ContentSourceException.Reported(exception), "the message was not ended and the connection was closed.");
    }
}
