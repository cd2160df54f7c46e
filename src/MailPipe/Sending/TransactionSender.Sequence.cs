using System.Runtime.CompilerServices;

namespace MailPipe.Sending;

internal sealed partial class TransactionSender
{
    /// <summary>
    /// Sends every message of the caller's sequence, each one's transaction added to <paramref name="batch"/>. Every
    /// member of the sequence is the caller's code (<c>GetAsyncEnumerator</c>, <c>MoveNextAsync</c>, <c>Current</c>,
    /// <c>DisposeAsync</c>): what one of them throws, but a cancellation, ends the loop and is returned, so that the
    /// messages taken before it are finished by the call (never left half-sent) and keep their results.
    /// </summary>
    /// <returns>The sequence's own exception, if it threw.</returns>
    /// <exception cref="ArgumentNullException">The sequence yielded a null message.</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<Exception?> SendSequenceAsync(IAsyncEnumerable<SmtpMessage> messages, BatchResults batch, CancellationToken cancellationToken)
    {
        Exception? sequenceError = null;
        IAsyncEnumerator<SmtpMessage>? enumerator;
        try
        {
            enumerator = messages.GetAsyncEnumerator(cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            sequenceError = ex;
            enumerator = null;
        }

        try
        {
            while (enumerator is not null)
            {
                // The connection is lost (or closing): a caller's own sequence is not taken from any more, so that a
                // long or endless one (a channel reader) does not keep the call going only to mark messages NotSent;
                // the results cover the messages taken. A list (_validated) still gets one result per message.
                if (!_validated && (_writerFailure is not null || Stopped || !_channel.IsOpen))
                {
                    break;
                }

                // The caller left a streaming call early: no more messages are taken, from a list either (their
                // results would be dropped); an endless sequence kept the call, and its disposal, going for ever.
                if (batch.Abandoned)
                {
                    break;
                }

                // The caller cancelled: no message is taken from the sequence any more (the ones taken keep their results).
                cancellationToken.ThrowIfCancellationRequested();

                ValueTask<bool> next;
                try
                {
                    next = enumerator.MoveNextAsync();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    sequenceError = ex;
                    break;
                }

                if (batch.IsStreaming && !next.IsCompleted)
                {
                    // The sequence waits (for a producer that may wait for these very results): send what is
                    // written and read the replies due, so that their results are out before the next message.
                    // With CHUNKING they are read concurrently, so that the next message is written as soon as
                    // it comes instead of after the whole window's replies (the window stays full).
                    if (_chunking && _pipelining)
                    {
                        await ReadWhileWaitingAsync().ConfigureAwait(false);
                    }
                    else
                    {
                        await SettleAsync().ConfigureAwait(false);
                    }
                }

                bool more;
                try
                {
                    more = await next.ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    sequenceError = ex;
                    break;
                }

                if (!more)
                {
                    break;
                }

                SmtpMessage? current;
                try
                {
                    current = enumerator.Current;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    sequenceError = ex;
                    break;
                }

                var tx = new MailTransaction(current ?? throw new ArgumentNullException(nameof(messages), "The sequence yielded a null message; nothing of it was sent."));
                batch.Add(tx);
                await SendTransactionAsync(tx, cancellationToken).ConfigureAwait(false);

                // A full fence before Stopped is read (at the loop's start): a reader that stops the replies from now
                // on publishes this transaction's result too (PublishWhenStopped).
                Interlocked.Increment(ref _transactionsDone);
                if (_cancellation is not null)
                {
                    break; // cancelled while reading replies: the messages not taken yet stay with the caller
                }
            }
        }
        finally
        {
            if (enumerator is not null)
            {
                try
                {
                    await enumerator.DisposeAsync().ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Never in place of what ended the loop (the sequence's first failure, a bad message, a
                    // cancellation): the messages taken keep their results. Alone, it is the sequence's failure.
                    sequenceError ??= ex;
                }
            }
        }

        return sequenceError;
    }
}
