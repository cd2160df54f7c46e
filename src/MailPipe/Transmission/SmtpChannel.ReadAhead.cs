using System.Buffers;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;

namespace MailPipe.Transmission;

/// <summary>Unsolicited replies: the read-ahead before a command written with nothing pending, and the check after the last reply.</summary>
internal sealed partial class SmtpChannel
{
    /// <summary>A read of the input started before a command was written with no reply pending (<see cref="CheckUnsolicited"/>); the next read takes it.</summary>
    private ValueTask<ReadResult> _readAhead;

    private bool _readAheadPending;

    /// <summary>The <see cref="_operationNumber"/> the read-ahead was started in.</summary>
    private int _readAheadOperation;

    /// <summary>How long after a reply was read the connection counts as busy (1 ms, in <see cref="Stopwatch"/> ticks).</summary>
    private static readonly long BusyTicks = Stopwatch.Frequency / 1000;

    /// <summary>When the last reply that left no reply pending was read (<see cref="Stopwatch.GetTimestamp"/>): see <see cref="CheckUnsolicited"/>.</summary>
    private long _lastReplyTimestamp;

    /// <summary>Set while a concurrent reply reader runs: then the writer never reads (no read-ahead).</summary>
    private volatile bool _concurrentReading;

    /// <summary>
    /// Hands the reading of replies to one concurrent reader while the operation's flow keeps writing (a long
    /// pipelined group, RFC 2920 §3.1): the writer does no read-ahead until <see cref="EndConcurrentReading"/>. The
    /// reader only reads, matches and files replies (<see cref="ReadReplyAsync"/>); it never touches the session's state.
    /// </summary>
    /// <typeparam name="TState">The reader loop's state.</typeparam>
    /// <param name="reader">The reader loop.</param>
    /// <param name="state">Its state.</param>
    /// <returns>The reader's task.</returns>
    public Task StartConcurrentReader<TState>(Func<TState, Task> reader, TState state)
    {
        _concurrentReading = true;
        return Task.Run(() => reader(state));
    }

    /// <summary>The concurrent reader has ended (its task was awaited): the writer's flow reads again.</summary>
    public void EndConcurrentReading() => _concurrentReading = false;

    /// <summary>
    /// Before a command is written with no reply pending: data the server sent unprompted is looked for through the
    /// (decrypted) input, by a read started now and kept for the next reply (a read-ahead; never
    /// <c>Socket.Available</c>, which counts TLS records such as TLS 1.3 session tickets). Blank lines are skipped by the
    /// parser; only a complete reply counts: 421 (or 221) means the service is closing — <see cref="SmtpErrorCode.ServiceNotAvailable"/>
    /// — and anything else is a protocol violation. Either way the command is not written and the connection is closed.
    /// </summary>
    /// <exception cref="SmtpException">A complete reply or the end of the stream was already there.</exception>
    public void CheckUnsolicited()
    {
        if (_concurrentReading || _replies.Count > 0 || Volatile.Read(ref _connection) is not { } connection)
        {
            return;
        }

        var input = connection.Input;
        if (!_readAheadPending && (RepliedJustNow() ? !connection.HasUnexaminedInput() : connection.NothingToRead()))
        {
            // Plaintext with nothing received: a read started now could not complete, so none is (it would make the
            // next reply's read always complete through the socket engine instead of at once; issue #9 acceptance 5).
            // A reply was read less than 1 ms ago (back-to-back commands): what came with it was examined then, and
            // what the server sent since (it could only be unprompted: nothing was asked) would race with this command
            // whether or not the transport were asked now; the reply rules catch a reply that shifts the rest. So only
            // the input already buffered is looked at, without a system call or a read-ahead (TLS too).
            return;
        }

        if (!_readAheadPending)
        {
            // With the operation's read token, as the read it stands for would have (its deadline and the caller's token apply).
#pragma warning disable CA2012 // Kept on purpose: the read-ahead is consumed exactly once, here or by the next read (NextReadAsync).
            _readAhead = input.ReadAsync(_readCts.Token);
#pragma warning restore CA2012
            _readAheadOperation = _operationNumber;
            _readAheadPending = true;
        }

        if (!_readAhead.IsCompleted)
        {
            return;
        }

        _readAheadPending = false;
        var ahead = _readAhead;
        _readAhead = default;
        try
        {
            // A read that ended in a transport failure (a reset while idle) is mapped like any other read's failure.
            // Completed (IsCompleted above): taking its result does not block.
            var result = ahead.Result;
            if (TryParseBuffered(input, result.Buffer, out var reply, out _))
            {
                LogReply(reply);
                throw UnsolicitedReply(reply, "before the next command was written");
            }

            if (result.IsCanceled || (result.IsCompleted && !_parser.HasPartialReply))
            {
                throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The server closed the connection while the session was idle; nothing more was written.");
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, "checking for replies nobody asked for");
        }
    }

    /// <summary>Whether a reply was read less than <see cref="BusyTicks"/> ago.</summary>
    private bool RepliedJustNow() => Stopwatch.GetTimestamp() - Volatile.Read(ref _lastReplyTimestamp) < BusyTicks;

    /// <summary>The next read of a reply: the pending read-ahead if there is one, else a new read with the receive deadline.</summary>
    private ValueTask<ReadResult> NextReadAsync(PipeReader input)
    {
        if (!_readAheadPending)
        {
            return input.ReadAsync(_readCts.Token);
        }

        // The read CheckUnsolicited started; one started in an earlier operation needs this one's token.
        var read = _readAhead.IsCompleted || _readAheadOperation == _operationNumber ? _readAhead : TakeEarlierReadAheadAsync(input, _readAhead);
        ForgetReadAhead();
        return read;
    }

    private void ForgetReadAhead()
    {
        _readAhead = default;
        _readAheadPending = false;
    }

    /// <summary>Takes a read-ahead started by an earlier operation (a raw command whose reply is read now), within this operation's deadline and token.</summary>
    private async ValueTask<ReadResult> TakeEarlierReadAheadAsync(PipeReader input, ValueTask<ReadResult> ahead)
    {
        ReadResult result;
        using (_readCts.Token.UnsafeRegister(static state => ((PipeReader)state!).CancelPendingRead(), input))
        {
            result = await ahead.ConfigureAwait(false);
        }

        if (result.IsCanceled && _readCts.IsCancellationRequested)
        {
            input.AdvanceTo(result.Buffer.Start);
            throw new OperationCanceledException(_readCts.Token);
        }

        return result;
    }

    /// <summary>
    /// After the reply that leaves nothing pending: a further complete reply already received answers no command (a
    /// doubled or stray reply); the one just read may then belong to another command too, so it is not returned.
    /// </summary>
    private void CheckNothingMoreBuffered(PipeReader input, string command, SmtpReply reply)
    {
        // After STARTTLS the handshake's own check reports any byte that follows (response injection).
        if (command == "STARTTLS" || _replies.Count > 0 || reply.IsServiceClosing || !input.TryRead(out var more))
        {
            return;
        }

        if (TryParseBuffered(input, more.Buffer, out var extra, out _))
        {
            LogReply(extra);
            throw UnsolicitedReply(extra, $"right after the reply {reply.Code} to {command}, with no command left to answer");
        }
    }

    /// <summary>
    /// Parses what <paramref name="input"/> returned: consumed is every complete line (the parser keeps them), examined
    /// is all of it unless a reply ended there. Parser state carries over to the next read. <paramref name="partialLine"/>
    /// says whether bytes of a line without its end are left.
    /// </summary>
    private bool TryParseBuffered(PipeReader input, in ReadOnlySequence<byte> buffer, [NotNullWhen(true)] out SmtpReply? reply, out bool partialLine)
    {
        var reader = new SequenceReader<byte>(buffer);
        var complete = false;
        try
        {
            complete = _parser.TryParse(ref reader, out reply);
        }
        finally
        {
            partialLine = !reader.End;
            input.AdvanceTo(reader.Position, complete ? reader.Position : buffer.End);
        }

        return complete;
    }

    /// <summary>What an unsolicited complete reply means: the service closing (421, 221), or a protocol violation.</summary>
    private static SmtpException UnsolicitedReply(SmtpReply reply, string when) =>
        ReplyRules.IsClosing(null, reply)
            ? new SmtpException(SmtpErrorCode.ServiceNotAvailable, $"The server closed the transmission channel ({when}): {reply}") { Reply = reply }
            : new SmtpProtocolException($"The server sent a reply nobody asked for ({when}): {reply}. Replies can no longer be matched to commands; the connection was closed.");
}
