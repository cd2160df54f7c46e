using System.Runtime.CompilerServices;

namespace MailPipe.Sending;

/// <summary>
/// The CHUNKING window (transactions whose BDAT LAST went out and whose final replies are not waited for yet: it
/// counts transactions, it never matches replies) and what a streaming call does while its sequence waits.
/// </summary>
internal sealed partial class TransactionSender
{
    /// <summary>With CHUNKING and PIPELINING: the transactions written whose final replies the writer has not yet waited for (the window).</summary>
    private readonly Queue<MailTransaction> _inFlight = new();

    /// <summary>
    /// Set when a streaming batch with CHUNKING found its sequence waiting: from then on replies are read concurrently
    /// and the window slides (a transaction is written as soon as the sequence has it).
    /// </summary>
    private bool _readsWhileWaiting;

    /// <summary>
    /// Set while the writer waits for a transaction's MAIL and RCPT replies that the concurrent reader has yet to read
    /// (<see cref="BeforeSeveralChunksAsync"/>); completed by the reader once they are filed, or when replies stop.
    /// </summary>
    private EnvelopeWait? _envelopeWait;

    /// <summary>
    /// Before the first chunk of a message that takes more than one (content longer than
    /// <see cref="SmtpSessionOptions.ChunkSize"/>, or a stream whose first chunk filled): with PIPELINING, when a reply to
    /// MAIL or to a RCPT is still due, what is written is flushed and those replies are waited for (one round trip; a
    /// message of one chunk stays fully pipelined). Content goes out only when MAIL and at least one recipient were
    /// accepted: Exim, for one, answers each chunk of a transaction without a valid recipient with 503, counts it as a
    /// protocol error and resets the connection after three, taking the transactions pipelined behind with it; and no
    /// megabytes are sent for nobody. A transaction stopped here is Refused (its replies say why) and the next one starts
    /// with RSET, as after any refusal.
    /// </summary>
    /// <returns>Whether the chunks may go out.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> BeforeSeveralChunksAsync(MailTransaction tx)
    {
        if (_pipelining && !tx.EnvelopeRepliesIn)
        {
            await _channel.FlushAsync("sending pipelined commands").ConfigureAwait(false);
            _channel.RoundTrips++;
            _expectedSinceWait = 0;
            await DrainDirectAsync().ConfigureAwait(false);
            if (_signals is not null)
            {
                // The concurrent reader reads the replies: register, then look (it looks after filing one, or stopping).
                var wait = new EnvelopeWait(tx);
                Interlocked.Exchange(ref _envelopeWait, wait);
                if (!Stopped && !tx.EnvelopeRepliesIn)
                {
                    await wait.Task.ConfigureAwait(false);
                }

                Volatile.Write(ref _envelopeWait, null);
            }
        }

        return !Stopped && _channel.IsOpen && tx.MailReply is { IsPositiveCompletion: true } && tx.AcceptedRecipientCount > 0;
    }

    /// <summary>The concurrent reader filed a reply or stopped: a writer waiting for a transaction's envelope replies goes on once they are in.</summary>
    private void CompleteEnvelopeWait()
    {
        if (Volatile.Read(ref _envelopeWait) is { } wait && (Stopped || wait.Transaction.EnvelopeRepliesIn))
        {
            wait.TrySetResult();
        }
    }

    /// <summary>With PIPELINING, a transaction whose BDAT LAST went out joins the window; a full window is one wait for all of it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WindowAsync(MailTransaction tx)
    {
        // Only a transaction whose BDAT LAST went out has a final reply to wait for: one whose content failed (reset
        // with RSET) or whose chunks stopped has none, and waiting for it would never end.
        if (!_pipelining || !tx.EndOfDataWritten)
        {
            return;
        }

        _inFlight.Enqueue(tx);
        if (_readsWhileWaiting)
        {
            // Replies are read concurrently: the window slides (one final reply waited for when it is full).
            while (_inFlight.TryPeek(out var head) && head.IsDecided)
            {
                _inFlight.Dequeue();
            }

            if (_inFlight.Count >= _options.MaxTransactionsInFlight)
            {
                await _channel.FlushAsync("sending pipelined commands").ConfigureAwait(false);
                _channel.RoundTrips++;
                _expectedSinceWait = 0;
                await _inFlight.Dequeue().WhenReady().ConfigureAwait(false);
            }

            return;
        }

        if (_inFlight.Count >= _options.MaxTransactionsInFlight)
        {
            await WaitAsync("sending pipelined commands").ConfigureAwait(false);
            while (_inFlight.TryDequeue(out var written))
            {
                await written.WhenReady().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Flushes what is written and reads every reply due, so that the results of the transactions written are known.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SettleAsync()
    {
        if (!await FlushBeforeWaitingAsync().ConfigureAwait(false))
        {
            return;
        }

        await DrainDirectAsync().ConfigureAwait(false);
        if (_signals is null)
        {
            // Every final reply of the window has been read.
            _inFlight.Clear();
            if (_lastChecked is { FinalReply.IsPositiveCompletion: true })
            {
                // The last transaction ended well: the next one needs no RSET.
                NeedsReset = false;
            }
        }
    }

    /// <summary>
    /// With CHUNKING, while the sequence of a streaming batch waits: flushes what is written and has the replies due
    /// read concurrently from now on, so that each result comes out as its reply arrives while the writer is free to
    /// write the next message at once (reading every reply due first would drain the window before the next message).
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadWhileWaitingAsync()
    {
        if (!await FlushBeforeWaitingAsync().ConfigureAwait(false))
        {
            return;
        }

        _readsWhileWaiting = true;
        if (_signals is null)
        {
            StartConcurrentReader();
        }
    }

    /// <summary>
    /// The sequence of a streaming batch waits: sends what is written (one round trip when replies are due). A failed
    /// flush is the writer's failure; nothing more is done then.
    /// </summary>
    /// <returns>Whether the replies due may be read (the connection is open, nothing stopped the call).</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> FlushBeforeWaitingAsync()
    {
        if (!_channel.IsOpen || Stopped || _writerFailure is not null)
        {
            return false;
        }

        try
        {
            await _channel.FlushAsync("sending pipelined commands").ConfigureAwait(false);
        }
        catch (SmtpException ex)
        {
            _writerFailure ??= ex;
            return false;
        }

        if (_expectedSinceWait > 0)
        {
            _channel.RoundTrips++;
            _expectedSinceWait = 0;
        }

        return true;
    }

    /// <summary>What the writer waits on in <see cref="BeforeSeveralChunksAsync"/>: that transaction's envelope replies filed.</summary>
    private sealed class EnvelopeWait(MailTransaction transaction) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public MailTransaction Transaction { get; } = transaction;
    }
}
