using System.Runtime.CompilerServices;

namespace MailPipe;

/// <summary>Sending without PIPELINING: one command at a time, and the failure helpers shared by both paths.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>
    /// Sends one command at a time: <paramref name="single"/> alone, or every message of <paramref name="messages"/>,
    /// each one's transaction added to <paramref name="batch"/>.
    /// </summary>
    /// <returns>Why the call stopped early (transport failure, 421, content read failure), if it did.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpException?> SendSequentiallyAsync(MailTransaction? single, IAsyncEnumerable<SmtpMessage>? messages, BatchResults? batch, bool chunking, CancellationToken cancellationToken)
    {
        SmtpException? failure = null;
        _serviceClosing = null;
        try
        {
            if (single is not null)
            {
                failure = await SendTransactionSequentiallyAsync(single, chunking, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await foreach (var message in messages!.WithCancellation(cancellationToken).ConfigureAwait(false))
                {
                    var tx = new MailTransaction(message);
                    batch!.Add(tx);
                    if (failure is null)
                    {
                        failure = await SendTransactionSequentiallyAsync(tx, chunking, cancellationToken).ConfigureAwait(false);
                    }

                    if (failure is null && _serviceClosing is null)
                    {
                        // Every reply of this transaction is in, and nothing that stops the call touches it: its result is final.
                        tx.WriterDone();
                        batch.Publish();
                    }
                }
            }

            return failure ?? _serviceClosing;
        }
        catch (SmtpException ex)
        {
            return failure ?? ex;
        }
    }

    /// <summary>
    /// One message's transaction, one command at a time: the body of the batch loop, and all of <c>SendAsync</c>.
    /// Nothing is sent once the connection is gone.
    /// </summary>
    /// <returns>The transport or content failure that stops the rest of the call, if any (not thrown).</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpException?> SendTransactionSequentiallyAsync(MailTransaction tx, bool chunking, CancellationToken cancellationToken)
    {
        try
        {
            if (!IsConnected)
            {
                return null;
            }

            if (IsCancelledBeforeStart(tx))
            {
                return null;
            }

            var (mailParameters, rcptParameters) = Prepare(tx, chunking);
            if (tx.NotAttempted is not null)
            {
                return null;
            }

            if (_resetBeforeNextMail)
            {
                await ResetTransactionAsync().ConfigureAwait(false);
            }

            _resetBeforeNextMail = true;
            WriteMail(tx, mailParameters);
            tx.MailReply = await FlushAndReadAsync(_options.ReceiveTimeout, "sending MAIL").ConfigureAwait(false);
            if (!tx.MailReply.IsPositiveCompletion)
            {
                BreakIfServiceClosing(tx.MailReply);
                return null;
            }

            for (var i = 0; i < tx.RecipientCount && IsConnected; i++)
            {
                WriteRcpt(tx, i, rcptParameters);
                tx.SetRecipientReply(i, BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending RCPT").ConfigureAwait(false)));
            }

            if (!IsConnected)
            {
                return null;
            }

            if (tx.AcceptedRecipientCount == 0)
            {
                return null;
            }

            if (chunking)
            {
                await WriteChunksAsync(tx, pump: null, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                WriteCommand(DataVerb, "DATA");
                tx.DataReply = BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending DATA").ConfigureAwait(false));
                if (tx.DataReply.Code != 354)
                {
                    return null;
                }

                await WriteDataContentAsync(tx, cancellationToken).ConfigureAwait(false);
                tx.FinalReply = BreakIfServiceClosing(await FlushAndReadAsync(_options.DataTerminationTimeout, "sending the end of message data").ConfigureAwait(false));
            }

            _resetBeforeNextMail = tx.FinalReply is not { IsPositiveCompletion: true };
            return null;
        }
        catch (SmtpException ex)
        {
            return ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            return ContentFailure(ex);
        }
    }

    /// <summary>The message's own token (<see cref="SmtpMessage.WithCancellation"/>) is cancelled: the transaction is not attempted, nothing of it is written.</summary>
    private static bool IsCancelledBeforeStart(MailTransaction tx)
    {
        var token = tx.Message.CancellationToken;
        if (!token.IsCancellationRequested)
        {
            return false;
        }

        tx.NotAttempted = new OperationCanceledException("The message was cancelled (its own token) before its transaction started; nothing of it was sent.", token);
        return true;
    }

    /// <summary>An exception from the caller's content source (not ours, not a cancellation, not bad arguments).</summary>
    private static bool IsContentFailure(Exception exception) =>
        exception is not (OperationCanceledException or ArgumentException or InvalidOperationException or SmtpException);

    /// <summary>The content could not be read: the message was never ended (the connection is closed so that it cannot be), and the batch's results are kept.</summary>
    private SmtpException ContentFailure(Exception exception)
    {
        Break("reading the message content failed");
        return new SmtpException(SmtpErrorCode.ContentReadFailed, $"Reading the message content failed: {exception.Message}; the message was not ended and the connection was closed.", exception);
    }

    private async Task ResetTransactionAsync()
    {
        WriteCommand(RsetVerb, "RSET");
        BreakIfServiceClosing(await FlushAndReadAsync(_options.ReceiveTimeout, "sending RSET").ConfigureAwait(false));
    }

    private SmtpReply BreakIfServiceClosing(SmtpReply reply)
    {
        if (reply.IsServiceClosing)
        {
            Break("the server sent 421 (service closing transmission channel)");
            _serviceClosing ??= ServiceClosingException(reply);
        }

        return reply;
    }

    /// <summary>What stands for "the server sent 421 and closed": commands after it were never processed, so what they carried was not sent.</summary>
    private static SmtpException ServiceClosingException(SmtpReply reply) =>
        new(SmtpErrorCode.ServiceNotAvailable, $"The server closed the transmission channel: {reply}") { Reply = reply };
}
