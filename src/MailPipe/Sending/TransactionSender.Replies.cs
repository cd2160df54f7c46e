using System.Runtime.CompilerServices;
using System.Threading.Channels;
using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>
/// The replies a call waits for, in wire order (the entries of the channel's one queue; this type only counts them).
/// Small groups are read by the writer itself at its wait points (no extra thread, no hand-off). When more than
/// <see cref="ConcurrentReadThreshold"/> replies pile up before a wait (thousands of RCPTs, many BDAT chunks), a reader
/// starts that reads while the writer goes on writing, so that a server blocked on unread replies can never deadlock
/// the connection (RFC 2920 §3.1). The CHUNKING window counts transactions; it never matches replies.
/// </summary>
internal sealed partial class TransactionSender
{
    /// <summary>The last line of Exim's reply past smtp_max_synprot_errors, before it closes the connection.</summary>
    private const string SynprotLimitText = "Too many syntax or protocol errors";

    /// <summary>Pending replies beyond which they are read concurrently with writing.</summary>
    private const int ConcurrentReadThreshold = 64;

    /// <summary>How many of the expected replies the writer reads itself at its next wait, until <see cref="_signals"/> exists.</summary>
    private int _unread;

    /// <summary>Once the concurrent reader runs: one signal per reply for it to read (the entries stay in the channel's queue).</summary>
    private Channel<bool>? _signals;

    private Task _readerCompletion = Task.CompletedTask;

    /// <summary>Why replies stopped: a transport failure, a timeout, or a 421.</summary>
    private SmtpException? _failure;

    private OperationCanceledException? _cancellation;

    /// <summary>
    /// The last reply read when it refused a RSET, which a server must accept (RFC 5321 §4.1.1.5): a server that then
    /// closes the connection is ending the session (Exim's "554 Too many nonmail commands"), as with 421.
    /// </summary>
    private SmtpReply? _refusedReset;

    /// <summary>
    /// The last reply read when it was Exim's last past smtp_max_synprot_errors (3 syntax or protocol errors on the
    /// connection, such as RCPTs to domain literals: "501-...", "501 Too many syntax or protocol errors"), after which
    /// Exim closes the connection without reading what follows: the transactions written after it were never processed.
    /// </summary>
    private SmtpReply? _synprotLimit;

    /// <summary>Replies expected since the writer last waited: when the call ends with some, that last wait is a round trip too.</summary>
    private int _expectedSinceWait;

    private bool Stopped => _failure is not null || _cancellation is not null;

    /// <summary>How many transactions of the call's caller's sequence the writer is done with (their results only wait for replies).</summary>
    private int _transactionsDone;

    /// <summary>Writes RSET (a transaction may be open) and waits for its reply unless pipelining.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask ResetAsync()
    {
        _channel.WriteCommand(RsetVerb, "RSET");
        Expect(new ExpectedReply(null, ReplyKind.Reset, 0));
        if (!_pipelining)
        {
            await WaitAsync("sending RSET").ConfigureAwait(false);
        }
    }

    /// <summary>After a BDAT chunk is written: its entry, then a flush when due (pipelining) or its reply.</summary>
    /// <returns>Whether further chunks of the transaction may follow (RFC 3030 §2: none after a negative reply).</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<bool> ChunkWrittenAsync(MailTransaction tx, bool last)
    {
        Expect(new ExpectedReply(tx, last ? ReplyKind.LastChunk : ReplyKind.Chunk, 0));
        if (_pipelining)
        {
            await _channel.FlushIfNeededAsync("sending BDAT chunks").ConfigureAwait(false);
            return !Stopped;
        }

        var go = await WaitAsync("sending BDAT").ConfigureAwait(false);
        return last || (go && tx.DataReply is not { IsNegative: true });
    }

    private void BeginCall(BatchResults? batch)
    {
        ReleaseCall();
        _readerCompletion = Task.CompletedTask;
        _failure = null;
        _cancellation = null;
        _expectedSinceWait = 0;
        _writerFailure = null;
        _results = batch;
        _readsWhileWaiting = false;
        _transactionsDone = 0;
        _channel.ForgetEndReplies();
        _channel.KeepInputOnWriteFailure = true;
    }

    /// <summary>Drops what refers to the call's messages, so that a session kept between calls does not keep their content alive.</summary>
    private void ReleaseCall()
    {
        _unread = 0;
        _signals = null;
        _inFlight.Clear();
        _envelopeWait = null;
        _last = null;
        _lastChecked = null;
        _results = null;
        _unflushedEnds.Clear();

        // Also when the end of the call did not run to its end.
        _channel.KeepInputOnWriteFailure = false;
        _channel.BreakIfOutputFailed();
    }

    /// <summary>The end of a call: what is written is flushed (unless cancelled), the replies due are read, the concurrent reader is stopped.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask EndCallAsync(bool flushed, bool cancelled)
    {
        if (!flushed && !cancelled && _channel.IsOpen && !Stopped)
        {
            // The call stopped between transactions (a bad message, or an exception from the caller's sequence that
            // is not a content failure): the earlier ones' end of data may still sit in the buffer. Send it, or the
            // wait for its reply below would last until the timeout, and the message would never be ended.
            try
            {
                await _channel.FlushAsync("sending pipelined commands").ConfigureAwait(false);
            }
            catch (SmtpException flushFailure)
            {
                _writerFailure ??= flushFailure;
            }
        }

        if (_expectedSinceWait > 0)
        {
            _channel.RoundTrips++;
        }

        if (!cancelled)
        {
            await DrainDirectAsync().ConfigureAwait(false);
        }

        _signals?.Writer.TryComplete();
        await _readerCompletion.ConfigureAwait(false);
        _channel.EndConcurrentReading();

        // A write found the connection closed by the server: the replies it sent before have been read; close now.
        _channel.KeepInputOnWriteFailure = false;
        _channel.BreakIfOutputFailed();
    }

    /// <summary>
    /// Why the call stopped: the server closing the channel (a 421, a refused RSET and the close) when the replies
    /// read say so, as it decides that what was written after was not processed; else the writer's failure, else the
    /// reader's.
    /// </summary>
    private SmtpException? CallFailure => _failure is { ErrorCode: SmtpErrorCode.ServiceNotAvailable } ? _failure : _writerFailure ?? _failure;

    /// <summary>A group ends: flush, one round trip, the replies due read.</summary>
    /// <returns>Whether the call may go on (replies did not stop, the connection is there).</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<bool> WaitAsync(string activity)
    {
        await _channel.FlushAsync(activity).ConfigureAwait(false);
        _channel.RoundTrips++;
        _expectedSinceWait = 0;
        await DrainDirectAsync().ConfigureAwait(false);
        return !Stopped && _channel.IsOpen;
    }

    /// <summary>Gives the command just written (the last entry of the channel's queue) what its reply is filed with, and counts it for the reader.</summary>
    private void Expect(ExpectedReply expected)
    {
        _channel.Replies.AttachToLast(expected);
        if (expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk)
        {
            _channel.EndReplyExpected();
        }

        _expectedSinceWait++;
        expected.Transaction?.ExpectReply();
        if (_signals is { } signals)
        {
            if (!signals.Writer.TryWrite(true))
            {
                throw new InvalidOperationException("The reply reader has stopped.");
            }

            return;
        }

        _unread++;
        if (_unread > ConcurrentReadThreshold)
        {
            // A long group: from now on read while writing (the replies could otherwise fill both TCP windows).
            StartConcurrentReader();
        }
    }

    /// <summary>In its own method so that the lambda's closure is allocated only when a concurrent reader starts.</summary>
    private void StartConcurrentReader()
    {
        var concurrent = System.Threading.Channels.Channel.CreateUnbounded<bool>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        for (; _unread > 0; _unread--)
        {
            concurrent.Writer.TryWrite(true);
        }

        _signals = concurrent;
        _readerCompletion = _channel.StartConcurrentReader(static sender => sender.PumpRepliesAsync(), this);
    }

    /// <summary>Reads, on the writer's own flow, the replies expected while no concurrent reader runs.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask DrainDirectAsync()
    {
        while (_unread > 0)
        {
            _unread--;
            await ReadExpectedReplyAsync().ConfigureAwait(false);
        }
    }

    private async Task PumpRepliesAsync()
    {
        var reader = _signals!.Reader;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (reader.TryRead(out _))
            {
                await ReadExpectedReplyAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads one expected reply and files it; a failure, a timeout, a cancellation or a 421 stops the reading (the rest stay unanswered).</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask ReadExpectedReplyAsync()
    {
        // The oldest entry of the channel's queue is the one this read answers (one reader at a time).
        var replies = _channel.Replies;
        replies.TryPeek(out var head);
        ExpectedReply expected = head.Payload;
        var endReply = expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk;
        if (Stopped)
        {
            // No reply will be read any more: drop the entry, release a writer waiting on it.
            replies.TryTake(out _);
            expected.Transaction?.SetReady();
            if (endReply)
            {
                _channel.EndReplyRead();
            }

            return;
        }

        var takenBefore = replies.TakenCount;
        try
        {
            if (!_channel.TryReadBufferedReply(out var reply))
            {
                var timeout = expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk ? _options.DataTerminationTimeout : _options.ReceiveTimeout;
                reply = await _channel.ReadReplyAsync(timeout).ConfigureAwait(false);
            }

            expected.File(reply);
            if (_refusedReset is { } refused && expected is { Kind: ReplyKind.Mail, Transaction: { } outOfStep } && reply.IsNegative)
            {
                outOfStep.StopOutOfStep(OutOfStep(refused, reply));
            }

            _refusedReset = expected.Kind == ReplyKind.Reset && reply.IsNegative ? reply : null;
            _synprotLimit = reply.IsNegative && reply.Lines.Count > 0 && reply.Lines[^1].Contains(SynprotLimitText, StringComparison.OrdinalIgnoreCase) ? reply : null;

            // A 421 closes the channel before any result it decides is published: whoever reads that result (the
            // pooled sender deciding on a retry and on the discard reason) sees the session disconnected.
            if (reply.IsServiceClosing)
            {
                _channel.Break("the server sent 421 (service closing transmission channel)");
                _failure = SmtpChannel.ServiceClosing(reply);
            }

            if (expected.Transaction is { } tx)
            {
                tx.ReplyFiled();
                _results?.Publish();
            }
        }
        catch (SmtpException ex)
        {
            // Matched, then withheld (a reply nobody asked for followed it: a 421 announcing the close, a stray reply):
            // the end of data was answered, so the message is never taken for one the server did not get.
            if (replies.TakenCount != takenBefore && expected.Kind is ReplyKind.EndOfData or ReplyKind.LastChunk && expected.Transaction is { } answered)
            {
                answered.EndOfDataAnswerWithheld = true;
            }

            // The connection closed right after a refused RSET or Exim's synprot limit: the server ended the session
            // there and processed nothing written after it, so what that carried was not sent (not Unknown).
            _failure = (_refusedReset ?? _synprotLimit) is { } ending && ex.ErrorCode == SmtpErrorCode.ConnectionClosed ? SmtpChannel.ServiceClosing(ending) : ex;
        }
        catch (OperationCanceledException ex)
        {
            _cancellation = ex;
        }
        finally
        {
            if (endReply)
            {
                // Read (or failed): the long send deadline it allowed ends.
                _channel.EndReplyRead();
            }

            if (replies.TakenCount == takenBefore)
            {
                // The read failed before its reply was matched: the entry is done with all the same, so that every
                // later read (or drop) meets its own entry.
                replies.TryTake(out _);
            }

            if (Stopped || expected.Kind is ReplyKind.Data or ReplyKind.LastChunk)
            {
                expected.Transaction?.SetReady();
            }

            if (_failure is { } failure)
            {
                PublishWhenStopped(failure);
            }

            if (_signals is not null)
            {
                // A full fence between what was filed or stopped and the writer's registration read (its side: Interlocked.Exchange).
                Interlocked.MemoryBarrier();
                CompleteEnvelopeWait();
            }
        }
    }

    /// <summary>
    /// Replies stopped: the results of the transactions the writer is done with are final. A streaming call publishes
    /// them now rather than when the call ends, so that a producer that waits for them (the sequence waiting, a lost
    /// connection noticed meanwhile) is not left waiting for results that would only come after its next message.
    /// </summary>
    private void PublishWhenStopped(SmtpException failure)
    {
        if (_results is { IsStreaming: true } results)
        {
            // A full fence between the failure written and the count read (the writer's side: Interlocked.Increment).
            Interlocked.MemoryBarrier();
            results.PublishStopped(failure.ErrorCode == SmtpErrorCode.ServiceNotAvailable ? failure : _writerFailure ?? failure, Volatile.Read(ref _transactionsDone));
        }
    }

    /// <summary>Why a MAIL refused right after a refused RSET leaves its message NotSent (<see cref="TransactionStop.OutOfStep"/>).</summary>
    private static SmtpException OutOfStep(SmtpReply refusedReset, SmtpReply mailReply) =>
        new(SmtpErrorCode.ServiceNotAvailable, $"The server refused RSET ({refusedReset}), which it must accept (RFC 5321 §4.1.1.5), and then this message's MAIL FROM ({mailReply}): it was out of step with the commands written and never took the message. Nothing was delivered; another connection may send it.")
        {
            Reply = mailReply,
        };
}
