using System.Runtime.CompilerServices;
using System.Threading.Channels;
using MailPipe.Transmission;

namespace MailPipe;

/// <summary>Sending with PIPELINING (RFC 2920): groups in one flush, replies filed in wire order, read concurrently only for long groups.</summary>
public sealed partial class AsyncSmtpSession
{
    private enum ReplyKind : byte
    {
        Mail,
        Recipient,
        Data,
        Chunk,
        LastChunk,
        EndOfData,
        Reset,
    }

    private readonly record struct ExpectedReply(MailTransaction? Transaction, ReplyKind Kind, int Index)
    {
        public static implicit operator ReplyTag(ExpectedReply expected) => new(expected.Transaction, (byte)expected.Kind, expected.Index);

        public static implicit operator ExpectedReply(ReplyTag tag) => new((MailTransaction?)tag.Owner, (ReplyKind)tag.Kind, tag.Index);
    }

    /// <summary>
    /// The replies a pipelined batch waits for, in wire order. Small groups are read by the writer itself at its wait
    /// points (no extra thread, no hand-off). When more than <see cref="ConcurrentReadThreshold"/> replies pile up
    /// before a wait (thousands of RCPTs, many BDAT chunks), a reader starts that reads while the writer goes on
    /// writing, so that a server blocked on unread replies can never deadlock the connection (RFC 2920 §3.1). It also
    /// carries the writer's state from one message to the next (its failure, whether the next transaction starts with
    /// RSET, the CHUNKING window), so that one per-message step serves the batch loop and <c>SendAsync</c> alike.
    /// </summary>
    private sealed class ReplyPump
    {
        /// <summary>How many of the expected replies (entries of the session's one queue) the writer reads itself at its next wait, until <see cref="Signals"/> exists.</summary>
        public int Unread { get; set; }

        /// <summary>Once the concurrent reader runs: one signal per reply for it to read (the entries stay in the session's queue).</summary>
        public Channel<bool>? Signals { get; set; }

        public Task Completion { get; set; } = Task.CompletedTask;

        /// <summary>Why replies stopped: a transport failure, a timeout, or a 421.</summary>
        public SmtpException? Failure { get; set; }

        public OperationCanceledException? Cancellation { get; set; }

        public bool Stopped => Failure is not null || Cancellation is not null;

        /// <summary>Replies expected since the writer last waited: when the batch ends with some, that last wait is a round trip too.</summary>
        public int ExpectedSinceWait { get; set; }

        /// <summary>With CHUNKING: the transactions written whose final replies the writer has not yet waited for (the window).</summary>
        public Queue<MailTransaction> InFlight { get; } = new();

        /// <summary>Why the writer stopped writing (a failed flush, a protocol violation, a failed content read); the rest of the call is not sent.</summary>
        public SmtpException? WriterFailure { get; set; }

        /// <summary>The batch call's transactions and results (null for <c>SendAsync</c>): a transaction's result is published there once decided.</summary>
        public BatchResults? Results { get; set; }

        /// <summary>Whether the next transaction written starts with RSET.</summary>
        public bool NeedsReset { get; set; }

        /// <summary>
        /// Set when a streaming batch with CHUNKING found its sequence waiting: from then on replies are read
        /// concurrently and the window slides (a transaction is written as soon as the sequence has it).
        /// </summary>
        public bool ReadsWhileWaiting { get; set; }

        /// <summary>The call's last transaction: a 354 to it with no recipient accepted leaves a transaction that the call ends with RSET.</summary>
        public MailTransaction? Last { get; set; }

        /// <summary>The call's last transaction that passed the checks before sending: its final reply decides whether the next call starts with RSET.</summary>
        public MailTransaction? LastChecked { get; set; }

        /// <summary>
        /// Makes the pump ready for a new call. The session keeps one pump (one call at a time), so that a call does
        /// not allocate a pump, a window and a queue that grows again from empty.
        /// </summary>
        public void Reset(bool needsReset)
        {
            Release();
            Completion = Task.CompletedTask;
            Failure = null;
            Cancellation = null;
            ExpectedSinceWait = 0;
            WriterFailure = null;
            NeedsReset = needsReset;
            ReadsWhileWaiting = false;
        }

        /// <summary>Drops what refers to the call's messages, so that a session kept between calls does not keep their content alive.</summary>
        public void Release()
        {
            Unread = 0;
            Signals = null;
            InFlight.Clear();
            Last = null;
            LastChecked = null;
            Results = null;
        }
    }

    /// <summary>Pending replies beyond which they are read concurrently with writing.</summary>
    private const int ConcurrentReadThreshold = 64;

    /// <summary>
    /// Sends with PIPELINING: <paramref name="single"/> alone (<c>SendAsync</c>: no list, no async iterator), or every
    /// message of <paramref name="messages"/>, each one's transaction added to <paramref name="batch"/>.
    /// </summary>
    /// <returns>Why the call stopped early (transport failure, 421, content read failure), if it did.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpException?> SendPipelinedAsync(MailTransaction? single, IAsyncEnumerable<SmtpMessage>? messages, BatchResults? batch, bool chunking, CancellationToken cancellationToken)
    {
        var pump = _replyPump ??= new ReplyPump();
        pump.Reset(_resetBeforeNextMail);
        pump.Results = batch;
        OperationCanceledException? writerCancellation = null;
        ArgumentException? argumentError = null;

        // Whether everything written has been flushed: until then, no reply to it can be waited for.
        var flushed = false;
        try
        {
            if (single is not null)
            {
                await SendPipelinedTransactionAsync(single, pump, chunking, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                var streaming = batch!.IsStreaming;
                var enumerator = messages!.GetAsyncEnumerator(cancellationToken);
                try
                {
                    while (true)
                    {
                        var next = enumerator.MoveNextAsync();
                        if (streaming && !next.IsCompleted)
                        {
                            // The sequence waits (for a producer that may wait for these very results): send what is
                            // written and read the replies due, so that their results are out before the next message.
                            // With CHUNKING they are read concurrently, so that the next message is written as soon as
                            // it comes instead of after the whole window's replies (the window stays full).
                            if (chunking)
                            {
                                await ReadWhileWaitingAsync(pump).ConfigureAwait(false);
                            }
                            else
                            {
                                await SettleAsync(pump).ConfigureAwait(false);
                            }
                        }

                        if (!await next.ConfigureAwait(false))
                        {
                            break;
                        }

                        var tx = new MailTransaction(enumerator.Current);
                        batch.Add(tx);
                        await SendPipelinedTransactionAsync(tx, pump, chunking, cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    await enumerator.DisposeAsync().ConfigureAwait(false);
                }
            }

            if (IsConnected && !pump.Stopped)
            {
                if (pump.Last is { DataReply.Code: 354 } last && last.AcceptedRecipientCount == 0)
                {
                    WriteCommand(RsetVerb, "RSET");
                    Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
                    pump.NeedsReset = false;
                }

                await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                flushed = true;
            }
        }
        catch (SmtpException ex)
        {
            pump.WriterFailure ??= ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            pump.WriterFailure ??= ContentFailure(ex);
        }
        catch (OperationCanceledException ex)
        {
            // The caller's cancellation (or a cancelled content read) in the middle of a transaction: close the
            // connection, as for every cancellation, so that a half-sent message can never be completed.
            writerCancellation = ex;
            Break("cancelled while sending");
        }
        catch (ArgumentException ex)
        {
            // A later message is invalid: finish the earlier ones (below), then report the bad input.
            argumentError = ex;
        }
        finally
        {
            if (!flushed && writerCancellation is null && IsConnected && !pump.Stopped)
            {
                // The call stopped between transactions (a bad message, or an exception from the caller's sequence
                // that is not a content failure): the earlier ones' end of data may still sit in the buffer. Send it,
                // or the wait for its reply below would last until the timeout, and the message would never be ended.
                try
                {
                    await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                }
                catch (SmtpException flushFailure)
                {
                    pump.WriterFailure ??= flushFailure;
                }
            }

            if (pump.ExpectedSinceWait > 0)
            {
                RoundTrips++;
            }

            if (writerCancellation is null)
            {
                await DrainDirectAsync(pump).ConfigureAwait(false);
            }

            pump.Signals?.Writer.TryComplete();
            await pump.Completion.ConfigureAwait(false);
            _concurrentReading = false;
        }

        var lastChecked = pump.LastChecked;
        pump.Release();
        if (writerCancellation is not null || pump.Cancellation is not null)
        {
            throw writerCancellation ?? pump.Cancellation!;
        }

        // Before a bad message's exception: the transactions sent ahead of it decide whether the next call starts with RSET.
        if (lastChecked is not null)
        {
            _resetBeforeNextMail = pump.NeedsReset && lastChecked.FinalReply is not { IsPositiveCompletion: true };
        }

        if (argumentError is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(argumentError);
        }

        return pump.WriterFailure ?? pump.Failure;
    }

    /// <summary>
    /// Writes one message's transaction in a pipelined call, reading replies as far as its group needs: the body of
    /// the batch loop, and all of <c>SendAsync</c>. Transport failures, 421 and content failures are recorded on the
    /// pump (the rest of the call is then not sent), not thrown; cancellation and bad arguments are thrown.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendPipelinedTransactionAsync(MailTransaction tx, ReplyPump pump, bool chunking, CancellationToken cancellationToken)
    {
        pump.Last = tx;

        // Set before the transaction's first byte is written: from then on an unexpected exception leaves the wire in an unknown state.
        var started = false;
        try
        {
            if (pump.WriterFailure is not null || pump.Stopped || !IsConnected)
            {
                return;
            }

            if (IsCancelledBeforeStart(tx))
            {
                return;
            }

            var (mailParameters, rcptParameters) = Prepare(tx, chunking);
            if (tx.NotAttempted is not null)
            {
                return;
            }

            started = true;
            if (pump.NeedsReset)
            {
                WriteCommand(RsetVerb, "RSET");
                Expect(pump, new ExpectedReply(null, ReplyKind.Reset, 0));
            }

            // The next pipelined transaction is written before this one's final reply is known: start it clean.
            pump.NeedsReset = true;

            WriteMail(tx, mailParameters);
            Expect(pump, new ExpectedReply(tx, ReplyKind.Mail, 0));
            for (var i = 0; i < tx.RecipientCount; i++)
            {
                WriteRcpt(tx, i, rcptParameters);
                Expect(pump, new ExpectedReply(tx, ReplyKind.Recipient, i));
            }

            if (chunking)
            {
                // MAIL, the RCPTs and the first BDAT share a flush; the next transaction follows without waiting,
                // up to the window.
                await WriteChunksAsync(tx, pump, cancellationToken).ConfigureAwait(false);
                var inFlight = pump.InFlight;

                // Only a transaction whose BDAT LAST went out has a final reply to wait for: one whose content failed
                // (reset with RSET) or whose chunks stopped has none, and waiting for it would never end.
                if (tx.EndOfDataWritten)
                {
                    inFlight.Enqueue(tx);
                }

                if (pump.ReadsWhileWaiting)
                {
                    // Replies are read concurrently: the window slides (one final reply waited for when it is full).
                    while (inFlight.TryPeek(out var head) && head.IsDecided)
                    {
                        inFlight.Dequeue();
                    }

                    if (inFlight.Count >= _options.MaxTransactionsInFlight)
                    {
                        await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                        RoundTrips++;
                        pump.ExpectedSinceWait = 0;
                        await inFlight.Dequeue().WhenReady().ConfigureAwait(false);
                    }

                    return;
                }

                if (inFlight.Count >= _options.MaxTransactionsInFlight)
                {
                    // The window is full: one wait for all of it, so a batch costs one round trip per window.
                    await FlushAsync("sending pipelined commands").ConfigureAwait(false);
                    RoundTrips++;
                    pump.ExpectedSinceWait = 0;
                    await DrainDirectAsync(pump).ConfigureAwait(false);
                    while (inFlight.TryDequeue(out var written))
                    {
                        await written.WhenReady().ConfigureAwait(false);
                    }
                }

                return;
            }

            // DATA ends the group (RFC 2920 §3.1); the previous message's content and dot went in the same flush.
            WriteCommand(DataVerb, "DATA");
            Expect(pump, new ExpectedReply(tx, ReplyKind.Data, 0));
            await FlushAsync("sending pipelined commands").ConfigureAwait(false);
            RoundTrips++;
            pump.ExpectedSinceWait = 0;
            await DrainDirectAsync(pump).ConfigureAwait(false);
            await tx.WhenReady().ConfigureAwait(false);
            if (pump.Stopped)
            {
                return;
            }

            if (tx.DataReply!.Code != 354)
            {
                return;
            }

            if (tx.MailReply is not { IsPositiveCompletion: true })
            {
                // DATA was accepted although our MAIL was not: the server is in some other transaction. Any byte
                // more, even a lone dot, could deliver mail that is not this envelope's: close the connection.
                pump.WriterFailure = new SmtpProtocolException("The server accepted DATA (354) although it refused MAIL; the connection was closed so that nothing is delivered in another transaction (RFC 2920 §3.1).");
                Break(pump.WriterFailure.Message);
                return;
            }

            if (tx.AcceptedRecipientCount == 0)
            {
                // 354 although no recipient was accepted: end the data at once, then RSET (RFC 2920 §3.1).
                _dataEncoder.Reset();
                _dataEncoder.Complete(Connection.Output);
                ExpectReply("end of data");
                Expect(pump, new ExpectedReply(tx, ReplyKind.EndOfData, 0));
                return;
            }

            await WriteDataContentAsync(tx, cancellationToken, pump).ConfigureAwait(false);
        }
        catch (SmtpException ex)
        {
            pump.WriterFailure ??= ex;
        }
        catch (Exception ex) when (IsContentFailure(ex))
        {
            pump.WriterFailure ??= ContentFailure(ex);
        }
        catch (Exception ex) when (IsUnexpected(ex) || (ex is ArgumentException && started))
        {
            Break($"unexpected {ex.GetType().Name} while sending");
            throw;
        }
        finally
        {
            if (tx.NotAttempted is null)
            {
                pump.LastChecked = tx;
            }

            if (pump.WriterFailure is null && pump.Results is { } results)
            {
                // Nothing that stops the call concerns this transaction: its result is final once its replies are filed.
                tx.WriterDone();
                results.Publish();
            }
        }
    }

    /// <summary>Flushes what is written and reads every reply due (the writer's own queue), so that the results of the transactions written are known.</summary>
    private async ValueTask SettleAsync(ReplyPump pump)
    {
        if (!IsConnected || pump.Stopped || pump.WriterFailure is not null)
        {
            return;
        }

        try
        {
            await FlushAsync("sending pipelined commands").ConfigureAwait(false);
        }
        catch (SmtpException ex)
        {
            pump.WriterFailure ??= ex;
            return;
        }

        if (pump.ExpectedSinceWait > 0)
        {
            RoundTrips++;
            pump.ExpectedSinceWait = 0;
        }

        await DrainDirectAsync(pump).ConfigureAwait(false);
        if (pump.Signals is null)
        {
            // Every final reply of the window has been read.
            pump.InFlight.Clear();
            if (pump.LastChecked is { FinalReply.IsPositiveCompletion: true })
            {
                // The last transaction ended well: the next one needs no RSET.
                pump.NeedsReset = false;
            }
        }
    }

    /// <summary>
    /// With CHUNKING, while the sequence of a streaming batch waits: flushes what is written and has the replies due
    /// read concurrently from now on, so that each result comes out as its reply arrives while the writer is free to
    /// write the next message at once (reading every reply due first would drain the window before the next message).
    /// </summary>
    private async ValueTask ReadWhileWaitingAsync(ReplyPump pump)
    {
        if (!IsConnected || pump.Stopped || pump.WriterFailure is not null)
        {
            return;
        }

        try
        {
            await FlushAsync("sending pipelined commands").ConfigureAwait(false);
        }
        catch (SmtpException ex)
        {
            pump.WriterFailure ??= ex;
            return;
        }

        if (pump.ExpectedSinceWait > 0)
        {
            RoundTrips++;
            pump.ExpectedSinceWait = 0;
        }

        pump.ReadsWhileWaiting = true;
        if (pump.Signals is null)
        {
            StartConcurrentReader(pump);
        }
    }

    /// <summary>Gives the command just written (the last entry of the session's queue) what its reply is filed with, and counts it for the reader.</summary>
    private void Expect(ReplyPump pump, ExpectedReply expected)
    {
        _pendingReplies.AttachToLast(expected);
        pump.ExpectedSinceWait++;
        expected.Transaction?.ExpectReply();
        if (pump.Signals is { } signals)
        {
            if (!signals.Writer.TryWrite(true))
            {
                throw new InvalidOperationException("The reply reader has stopped.");
            }

            return;
        }

        pump.Unread++;
        if (pump.Unread > ConcurrentReadThreshold)
        {
            // A long group: from now on read while writing (the replies could otherwise fill both TCP windows).
            StartConcurrentReader(pump);
        }
    }

    /// <summary>Hands the replies not read yet to a concurrent reader, which reads them and every later one. In its own method so that the lambda's closure is allocated only when a concurrent reader starts.</summary>
    private void StartConcurrentReader(ReplyPump pump)
    {
        var concurrent = System.Threading.Channels.Channel.CreateUnbounded<bool>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        for (; pump.Unread > 0; pump.Unread--)
        {
            concurrent.Writer.TryWrite(true);
        }

        pump.Signals = concurrent;
        _concurrentReading = true;
        pump.Completion = Task.Run(() => PumpRepliesAsync(pump));
    }

    /// <summary>Reads, on the writer's own flow, the replies expected while no concurrent reader runs.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DrainDirectAsync(ReplyPump pump)
    {
        while (pump.Unread > 0)
        {
            pump.Unread--;
            await ReadExpectedReplyAsync(pump).ConfigureAwait(false);
        }
    }

    private async Task PumpRepliesAsync(ReplyPump pump)
    {
        var reader = pump.Signals!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out _))
            {
                await ReadExpectedReplyAsync(pump).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads one expected reply and files it; a failure, a timeout, a cancellation or a 421 stops the reading (the rest stay unanswered).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExpectedReplyAsync(ReplyPump pump)
    {
        // The oldest entry of the session's queue is the one this read answers (one reader at a time).
        _pendingReplies.TryPeek(out var head);
        ExpectedReply expected = head.Payload;
        if (pump.Stopped)
        {
            // No reply will be read any more: drop the entry, release a writer waiting on it.
            _pendingReplies.TryTake(out _);
            expected.Transaction?.SetReady();
            return;
        }

        var takenBefore = _pendingReplies.TakenCount;
        try
        {
            var timeout = expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk ? _options.DataTerminationTimeout : _options.ReceiveTimeout;
            var reply = await ReadReplyAsync(timeout).ConfigureAwait(false);
            File(expected, reply);
            if (expected.Transaction is { } tx)
            {
                tx.ReplyFiled();
                pump.Results?.Publish();
            }

            if (reply.IsServiceClosing)
            {
                Break("the server sent 421 (service closing transmission channel)");
                pump.Failure = ServiceClosingException(reply);
            }
        }
        catch (SmtpException ex)
        {
            pump.Failure = ex;
        }
        catch (OperationCanceledException ex)
        {
            pump.Cancellation = ex;
        }
        finally
        {
            if (_pendingReplies.TakenCount == takenBefore)
            {
                // The read failed before its reply was matched: the entry is done with all the same, so that every
                // later read (or drop) meets its own entry.
                _pendingReplies.TryTake(out _);
            }

            if (pump.Stopped || expected.Kind is ReplyKind.Data or ReplyKind.LastChunk)
            {
                expected.Transaction?.SetReady();
            }
        }
    }

    private static void File(ExpectedReply expected, SmtpReply reply)
    {
        var tx = expected.Transaction;
        if (tx is null)
        {
            return;
        }

        switch (expected.Kind)
        {
            case ReplyKind.Mail:
                tx.MailReply = reply;
                break;
            case ReplyKind.Recipient:
                tx.SetRecipientReply(expected.Index, reply);
                break;
            case ReplyKind.Data:
                tx.DataReply = reply;
                break;
            case ReplyKind.Chunk:
                if (reply.IsNegative)
                {
                    tx.DataReply ??= reply;
                }

                break;
            case ReplyKind.LastChunk:
            case ReplyKind.EndOfData:
                tx.FinalReply = reply;
                break;
        }
    }
}
