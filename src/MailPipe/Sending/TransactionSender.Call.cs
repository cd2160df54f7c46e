using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace MailPipe.Sending;

/// <summary>The call loop and one transaction: pipelined groups, or one command at a time (a window of one).</summary>
internal sealed partial class TransactionSender
{
    private static readonly byte[] DataVerb = "DATA"u8.ToArray();
    private static readonly byte[] RsetVerb = "RSET"u8.ToArray();

    /// <summary>With PIPELINING: groups in one flush and a CHUNKING window; without, every command waits for its reply.</summary>
    private bool _pipelining;

    private bool _chunking;

    /// <summary>Whether the call's messages were checked before it started (a list), or are checked one by one (a sequence).</summary>
    private bool _validated;

    /// <summary>Why the writer stopped writing (a failed flush, a protocol violation, a failed content read); the rest of the call is not sent.</summary>
    private SmtpException? _writerFailure;

    /// <summary>The batch call's transactions and results (null for <c>SendAsync</c>): a transaction's result is published there once decided.</summary>
    private BatchResults? _results;

    /// <summary>The call's last transaction: a 354 to it with no recipient accepted leaves a transaction that the call ends with RSET.</summary>
    private MailTransaction? _last;

    /// <summary>The call's last transaction that passed the checks before sending: its final reply decides whether the next call starts with RSET.</summary>
    private MailTransaction? _lastChecked;

    /// <summary>
    /// Sends <paramref name="single"/> alone (<c>SendAsync</c>: no list, no async iterator), or every message of
    /// <paramref name="messages"/>, each one's transaction added to <paramref name="batch"/>.
    /// </summary>
    /// <returns>Why the call stopped early (transport failure, 421, content read failure), if it did.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpException?> SendCallAsync(MailTransaction? single, IAsyncEnumerable<SmtpMessage>? messages, BatchResults? batch, CancellationToken cancellationToken)
    {
        BeginCall(batch);
        OperationCanceledException? writerCancellation = null;
        ArgumentException? argumentError = null;

        // What the caller's sequence itself threw (not a cancellation): the messages taken before it are finished first.
        Exception? sequenceError = null;

        // Whether everything written has been flushed: until then, no reply to it can be waited for.
        var flushed = false;
        try
        {
            if (single is not null)
            {
                await SendTransactionAsync(single, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                sequenceError = await SendSequenceAsync(messages!, batch!, cancellationToken).ConfigureAwait(false);
            }

            if (_channel.IsOpen && !Stopped)
            {
                if (_last is { DataReply.Code: 354 } last && last.AcceptedRecipientCount == 0)
                {
                    _channel.WriteCommand(RsetVerb, "RSET");
                    Expect(new ExpectedReply(null, ReplyKind.Reset, 0));
                    NeedsReset = false;
                }

                await _channel.FlushAsync("sending pipelined commands").ConfigureAwait(false);
                flushed = true;
            }
        }
        catch (SmtpException ex)
        {
            _writerFailure ??= ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            _writerFailure ??= ContentFailure(ex);
        }
        catch (OperationCanceledException ex)
        {
            // The caller's cancellation (or a cancelled content read) in the middle of a transaction: close the
            // connection, as for every cancellation, so that a half-sent message can never be completed.
            writerCancellation = ex;
            ForgetEndsNeverSent(closing: true);
            _channel.Break("cancelled while sending");
        }
        catch (ArgumentException ex)
        {
            // A later message is invalid: finish the earlier ones (below), then report the bad input.
            argumentError = ex;
        }
        finally
        {
            await EndCallAsync(flushed, writerCancellation is not null).ConfigureAwait(false);
            ForgetEndsNeverSent(closing: false);
        }

        var lastChecked = _lastChecked;
        ReleaseCall();
        if (writerCancellation is not null || _cancellation is not null)
        {
            throw writerCancellation ?? _cancellation!;
        }

        // Before a bad message's exception: the transactions sent ahead of it decide whether the next call starts with RSET.
        if (lastChecked is not null)
        {
            NeedsReset = NeedsReset && lastChecked.FinalReply is not { IsPositiveCompletion: true };
        }

        if (argumentError is not null)
        {
            // The results taken so far keep why the replies stopped (a lost connection, a 421), as when the call returns.
            batch?.Complete(CallFailure);
            ExceptionDispatchInfo.Throw(argumentError);
        }

        if (sequenceError is not null)
        {
            // Likewise; a streaming call has yielded every result when this is thrown as it is.
            batch!.SequenceError = sequenceError;
            var results = batch.Complete(CallFailure);
            if (!batch.IsStreaming)
            {
                throw new SmtpBatchSequenceException(results, sequenceError);
            }

            ExceptionDispatchInfo.Throw(sequenceError);
        }

        return CallFailure;
    }

    /// <summary>
    /// Writes one message's transaction, reading replies as far as its group needs (every reply at once without
    /// PIPELINING). Transport failures, 421 and content failures are recorded (the rest of the call is then not
    /// sent), not thrown; cancellation and bad arguments are thrown.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendTransactionAsync(MailTransaction tx, CancellationToken cancellationToken)
    {
        // With DATA, whether this transaction's commands would follow the previous one's end of data before its final
        // reply (RFC 2920 §3.1 allows it; Haraka 3.3.4 answers each such command 503 and runs none).
        var behindEndOfData = _pipelining && !_chunking && _last is { EndOfDataWritten: true, FinalReply: null };
        _last = tx;

        // Set before the transaction's first byte is written: from then on an unexpected exception leaves the wire in an unknown state.
        var started = false;
        try
        {
            if (_writerFailure is not null || Stopped || !_channel.IsOpen || IsCancelledBeforeStart(tx))
            {
                return;
            }

            // The call was cancelled (a message taken as the caller cancelled): nothing of it is written, it is NotSent.
            cancellationToken.ThrowIfCancellationRequested();

            var (mailParameters, rcptParameters, plan) = Prepare(tx);
            if (tx.IsWithdrawn)
            {
                return;
            }

            started = true;
            if (behindEndOfData && WaitsAfterEndOfData)
            {
                await SettleAsync().ConfigureAwait(false);
                behindEndOfData = false;
            }

        writeEnvelope:
            if (NeedsReset)
            {
                await ResetAsync().ConfigureAwait(false);
            }

            // The next transaction may be written before this one's final reply is known: start it clean. Not only for
            // BDAT: although RFC 5321 §4.1.1.4 clears the server's buffers at the end of data, Postfix keeps a transaction
            // refused by smtpd_end_of_data_restrictions open (the next MAIL gets 503 nested MAIL, and the next RCPT and
            // data would join the refused envelope); SendAsyncPostfixTests' batch with eod-reject pins it.
            NeedsReset = true;
            WriteMail(tx, mailParameters);
            Expect(new ExpectedReply(tx, ReplyKind.Mail, 0));
            if (!_pipelining && (!await WaitAsync("sending MAIL").ConfigureAwait(false) || tx.MailReply is not { IsPositiveCompletion: true }))
            {
                return;
            }

            for (var i = 0; i < tx.RecipientCount; i++)
            {
                WriteRcpt(tx, i, rcptParameters);
                Expect(new ExpectedReply(tx, ReplyKind.Recipient, i));
                if (!_pipelining && !await WaitAsync("sending RCPT").ConfigureAwait(false))
                {
                    return;
                }
            }

            if (!_pipelining && tx.AcceptedRecipientCount == 0)
            {
                return;
            }

            if (_chunking)
            {
                // MAIL, the RCPTs and the first BDAT share a flush; the next transaction follows without waiting, up to the window.
                await WriteBodyAsync(tx, plan, cancellationToken).ConfigureAwait(false);
                await WindowAsync(tx).ConfigureAwait(false);
                return;
            }

            // DATA ends the group (RFC 2920 §3.1); the previous message's content and dot went in the same flush.
            _channel.WriteCommand(DataVerb, "DATA");
            Expect(new ExpectedReply(tx, ReplyKind.Data, 0));
            await _channel.FlushAsync(_pipelining ? "sending pipelined commands" : "sending DATA").ConfigureAwait(false);
            _channel.RoundTrips++;
            _expectedSinceWait = 0;
            await DrainDirectAsync().ConfigureAwait(false);
            await tx.WhenReady().ConfigureAwait(false);
            if (behindEndOfData && tx.MailReply is { Code: 503 })
            {
                // The server refused the commands pipelined behind the end of data: from now on on this connection,
                // the next transaction waits for the final reply (one round trip more per message).
                WaitsAfterEndOfData = true;
                behindEndOfData = false;
                if (!Stopped && _channel.IsOpen && tx.DataReply is { Code: 503 })
                {
                    // It ran none of them (DATA got 503 too: no content was due): this transaction is written again,
                    // now after every reply. Its result is not out yet (the writer is not done with it).
                    tx.ForgetEnvelopeReplies();
                    goto writeEnvelope;
                }
            }

            if (Stopped || tx.DataReply!.Code != 354 || !IsDataAccepted(tx))
            {
                return;
            }

            await WriteBodyAsync(tx, plan, cancellationToken).ConfigureAwait(false);
            if (!_pipelining)
            {
                await WaitAsync("sending the end of message data").ConfigureAwait(false);
            }
        }
        catch (SmtpException ex)
        {
            _writerFailure ??= ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            // DATA: the message was never ended (BDAT records its own content failure and resets the transaction). The
            // messages after it are not sent because the connection is closed, not for this content's sake.
            var failure = ContentFailure(ex);
            tx.Stop(TransactionStop.ContentFailed, failure);
            _writerFailure ??= new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed because the content of another message of the call failed while it was written (with DATA the only way to abandon it); this message was not sent.", failure);
        }
        catch (OperationCanceledException ex) when (started && !tx.IsWithdrawn)
        {
            // Cancelled in the middle of the transaction (the caller's token, or the content source's own
            // cancellation): its result says so, also when it is published before the call ends (streaming).
            tx.Stop(TransactionStop.Cancelled, ex);
            throw;
        }
        catch (Exception ex) when (IsUnexpected(ex) || (ex is ArgumentException && started))
        {
            // Recorded as the writer's failure, so that no result of the call is published without a reason.
            _channel.Break($"unexpected {ex.GetType().Name} while sending");
            _writerFailure ??= UnexpectedFailure(ex);
            throw;
        }
        finally
        {
            EndTransaction(tx, started);
        }
    }

    /// <summary>After 354: whether the content may follow. With no recipient accepted the data is ended at once (a lone dot, then RSET at the end of the call; RFC 2920 §3.1).</summary>
    private bool IsDataAccepted(MailTransaction tx)
    {
        if (tx.MailReply is not { IsPositiveCompletion: true })
        {
            // DATA was accepted although our MAIL was not: the server is in some other transaction. Any byte more,
            // even a lone dot, could deliver mail that is not this envelope's: close the connection.
            _writerFailure = new SmtpProtocolException("The server accepted DATA (354) although it refused MAIL; the connection was closed so that nothing is delivered in another transaction (RFC 2920 §3.1).");
            _channel.Break(_writerFailure.Message);
            return false;
        }

        if (tx.AcceptedRecipientCount > 0)
        {
            return true;
        }

        Data.Begin();
        Data.Encoder.Complete(_channel.Output);
        _channel.ExpectReply("end of data");
        Expect(new ExpectedReply(tx, ReplyKind.EndOfData, 0));
        return false;
    }

    /// <summary>The writer is done with <paramref name="tx"/>: its result is published once its replies are filed, unless what stops the call concerns it.</summary>
    private void EndTransaction(MailTransaction tx, bool started)
    {
        if (!tx.IsWithdrawn)
        {
            _lastChecked = tx;
        }

        if (started && !_pipelining)
        {
            // One command at a time: every reply of the transaction is in.
            NeedsReset = tx.FinalReply is not { IsPositiveCompletion: true };
        }

        // One the writer did not start because the call had stopped (the replies stopped while a streaming sequence
        // waited, then it yielded this one) is not decided by replies: its result comes with why the call stopped.
        if (_writerFailure is null && (_pipelining || !Stopped) && (started || tx.IsWithdrawn) && _results is { } results)
        {
            tx.WriterDone();
            results.Publish();
        }
    }

    /// <summary>What the results of a call stopped by an unexpected exception (<see cref="IsUnexpected"/>) carry as their reason.</summary>
    private static SmtpException UnexpectedFailure(Exception exception) =>
        new(SmtpErrorCode.ConnectionClosed, $"An unexpected {exception.GetType().Name} stopped the send ({exception.Message}); the connection was closed.", exception);

    /// <summary>
    /// An exception that is neither the server's nor the caller's (a defect of MailPipe's own, an exhausted resource,
    /// or a misbehaving source's contract broken inside MailPipe's code): once anything of the transaction may have
    /// been written the connection's state is unknown, so it is closed; the exception goes to the caller unchanged,
    /// and the call's results say why (<see cref="UnexpectedFailure"/>).
    /// </summary>
    private static bool IsUnexpected(Exception exception) =>
        exception is not (SmtpException or ContentSourceException or SmtpContentRefusedException or OperationCanceledException or ArgumentException);
}
