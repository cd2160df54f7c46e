using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MailPipe.Transmission;

/// <summary>Writing command lines, flushing, reading and matching replies; every failure funnels through <see cref="Fail"/>.</summary>
internal sealed partial class SmtpChannel
{
    /// <summary>See <see cref="FlushesStarted"/>.</summary>
    private long _flushesStarted;

    /// <summary>Replies to an end of data (the final dot, BDAT LAST) expected and not read yet (see <see cref="EndReplyExpected"/>).</summary>
    private int _endRepliesDue;

    /// <summary>
    /// The reply to an end of data was just expected: until it is read (<see cref="EndReplyRead"/>) a flush that waits
    /// has as long as that reply may take (<see cref="SmtpSessionOptions.DataTerminationTimeout"/>, RFC 5321
    /// §4.5.3.2.6), when that is longer than <see cref="SmtpSessionOptions.SendTimeout"/>: a server does not read while
    /// it processes a message's end (a content filter), so what is pipelined behind it waits with it.
    /// </summary>
    public void EndReplyExpected() => Interlocked.Increment(ref _endRepliesDue);

    /// <summary>The reply to an end of data was read, or will never be (see <see cref="EndReplyExpected"/>).</summary>
    public void EndReplyRead() => Interlocked.Decrement(ref _endRepliesDue);

    /// <summary>No reply to an end of data is due (a new call, a new or closed connection).</summary>
    public void ForgetEndReplies() => Volatile.Write(ref _endRepliesDue, 0);

    /// <summary>The send deadline of a flush that waits: <see cref="SmtpSessionOptions.SendTimeout"/>, or the longer <see cref="SmtpSessionOptions.DataTerminationTimeout"/> while an end's reply is due.</summary>
    private TimeSpan FlushTimeout()
    {
        var send = _options.SendTimeout;
        if (Volatile.Read(ref _endRepliesDue) <= 0 || send == Timeout.InfiniteTimeSpan)
        {
            return send;
        }

        var end = _options.DataTerminationTimeout;
        return end == Timeout.InfiniteTimeSpan || end > send ? end : send;
    }

    /// <summary>Writes one command line (not flushed) and queues its expected reply; queue order is wire order.</summary>
    /// <param name="verb">The command line's bytes without CRLF (<c>"RSET"u8</c>).</param>
    /// <param name="name">The expected reply's name (see <see cref="ReplyRules"/>).</param>
    public void WriteCommand(ReadOnlySpan<byte> verb, string name)
    {
        CheckUnsolicited();
        SmtpCommandWriter.Write(OpenConnection.Output, verb);
        _replies.Add(name);
        Log.ClientLine(_protocolLog, name);
    }

    /// <summary>Writes <c>VERB argument</c> (not flushed); with <paramref name="maskArgument"/> the transcript masks the argument as an address.</summary>
    public void WriteCommand(ReadOnlySpan<byte> verb, string name, string argument, bool maskArgument)
    {
        CheckUnsolicited();
        SmtpCommandWriter.Write(OpenConnection.Output, verb, argument);
        _replies.Add(name);
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            Log.ClientLine(_protocolLog, string.Concat(name, " ", maskArgument ? MaskAddress(argument) : argument));
        }
    }

    /// <summary>Writes <c>MAIL FROM:&lt;path&gt; params</c> or <c>RCPT TO:…</c> (not flushed).</summary>
    public void WritePathCommand(ReadOnlySpan<byte> prefix, string name, string path, string? parameters)
    {
        CheckUnsolicited();
        SmtpCommandWriter.WritePathCommand(OpenConnection.Output, prefix, path, parameters);
        _replies.Add(name);
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            var shownParameters = string.IsNullOrWhiteSpace(parameters) ? string.Empty : " " + MaskParameters(parameters.Trim());
            Log.ClientLine(_protocolLog, $"{name}:<{MaskAddress(SmtpCommandWriter.StripBrackets(path).ToString())}>{shownParameters}");
        }
    }

    /// <summary>Queues the expected reply of a command the caller has just written to <see cref="Output"/> itself (after <see cref="CheckUnsolicited"/>).</summary>
    /// <param name="name">The expected reply's name.</param>
    public void ExpectReply(string name) => _replies.Add(name);

    /// <summary>Sends everything written so far, within <see cref="SmtpSessionOptions.SendTimeout"/>.</summary>
    /// <param name="activity">What is being done, for a failure's message.</param>
    /// <returns>A task that completes when the bytes are handed to the transport.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask FlushAsync(string activity)
    {
        var output = OpenConnection.Output;
        var armed = false;
        try
        {
            // A token already cancelled (the caller's, as the call was cancelled after the last check) hands the
            // transport nothing: PipeWriter.FlushAsync would still give the stream the bytes with that token, and a
            // stream that does not check it sends them. Not begun, so an end of data still in the buffer is NotSent.
            _sendCts.Token.ThrowIfCancellationRequested();

            // Counted before the transport is handed anything: from here on what was written may reach the server.
            Interlocked.Increment(ref _flushesStarted);
            var flush = output.FlushAsync(_sendCts.Token);
            if (!flush.IsCompleted)
            {
                // Only a flush that waits needs the deadline (its token is the deadline's): one the transport took at
                // once — nearly every flush — costs no timer update.
                StartSendDeadline(FlushTimeout());
                armed = true;
            }

            var result = await flush.ConfigureAwait(false);
            if (result.IsCanceled || result.IsCompleted)
            {
                throw new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed while {activity}.");
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, activity);
        }

        if (armed)
        {
            StopSendDeadline();
        }
    }

    /// <summary>
    /// How many flushes have begun on this channel. The output is a buffer that reaches the transport only through
    /// <see cref="FlushAsync"/> (<see cref="Transport.SmtpConnection.Abort"/> drops what it holds): bytes written while this
    /// stood at a value were never handed to the transport if it still stands there once the connection is closed.
    /// </summary>
    public long FlushesStarted => Interlocked.Read(ref _flushesStarted);

    /// <summary>Flushes when at least <see cref="SmtpSessionOptions.DataFlushThreshold"/> bytes are buffered, so memory stays bounded for large messages.</summary>
    /// <param name="activity">What is being done, for a failure's message.</param>
    /// <returns>A task that completes when the flush (if any) is done.</returns>
    public ValueTask FlushIfNeededAsync(string activity)
    {
        var output = OpenConnection.Output;
        return output.CanGetUnflushedBytes && output.UnflushedBytes < _options.DataFlushThreshold
            ? ValueTask.CompletedTask
            : FlushAsync(activity);
    }

    /// <summary>Flushes, counts a round trip, then reads the next reply.</summary>
    /// <param name="replyTimeout">The receive deadline of the reply.</param>
    /// <param name="activity">What is being done, for a failure's message.</param>
    /// <returns>The reply.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SmtpReply> FlushAndReadAsync(TimeSpan replyTimeout, string activity)
    {
        await FlushAsync(activity).ConfigureAwait(false);
        RoundTrips++;
        return await ReadReplyAsync(replyTimeout).ConfigureAwait(false);
    }

    /// <summary>Reads one complete reply within <paramref name="timeout"/>, matches it to the oldest expected entry (checked by <see cref="ReplyRules"/>) and logs it.</summary>
    /// <param name="timeout">The receive deadline.</param>
    /// <returns>The reply.</returns>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<SmtpReply> ReadReplyAsync(TimeSpan timeout)
    {
        var input = OpenConnection.Input;

        // The entry this read matched, once taken (the name in a failure's message; looked up only then).
        string? matched = null;
        var armed = false;
        try
        {
            while (true)
            {
                var read = NextReadAsync(input);
                if (!armed && !read.IsCompleted)
                {
                    // The deadline runs from the first read that has to wait (its token is the deadline's); a reply
                    // already received costs no timer update.
                    StartReadDeadline(timeout);
                    armed = true;
                }

                var result = await read.ConfigureAwait(false);
                if (TryParseBuffered(input, result.Buffer, out var reply, out var partialLine))
                {
                    if (armed)
                    {
                        StopReadDeadline();
                    }

                    matched = _replies.TryTake(out var entry) ? entry.Name : null;
                    if (OnReply(matched, reply) is { } command)
                    {
                        CheckNothingMoreBuffered(input, command, reply);
                    }

                    return reply;
                }

                if (result.IsCanceled)
                {
                    // Our own close (Abort, Break) ended the read: its reason, as when the stream threw instead (Classify).
                    throw new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed ({CloseReason ?? "locally"}) while waiting for {WaitingFor(matched)}.");
                }

                if (result.IsCompleted)
                {
                    var partial = _parser.HasPartialReply || partialLine;
                    throw partial
                        ? new SmtpProtocolException(SmtpErrorCode.ProtocolError, $"The server closed the connection in the middle of a reply (waiting for {WaitingFor(matched)}).")
                        : new SmtpException(SmtpErrorCode.ConnectionClosed, $"The server closed the connection (waiting for {WaitingFor(matched)}).");
                }
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, $"waiting for {WaitingFor(matched)}", reading: true);
        }
    }

    /// <summary>
    /// Takes a reply that is already complete in the input, without waiting (no deadline to arm, no asynchronous
    /// read): the second and later replies of a pipelined group usually arrive with the first. Matched, checked and
    /// logged as <see cref="ReadReplyAsync"/> does; <see langword="false"/> when no complete reply is buffered (a
    /// partial one stays with the parser for the read that follows).
    /// </summary>
    /// <param name="reply">The reply.</param>
    /// <returns>Whether a reply was taken.</returns>
    public bool TryReadBufferedReply([NotNullWhen(true)] out SmtpReply? reply)
    {
        reply = null;
        if (_readAheadPending || Volatile.Read(ref _connection) is not { } connection)
        {
            return false;
        }

        var input = connection.Input;
        string? matched = null;
        try
        {
            if (!input.TryRead(out var result))
            {
                return false;
            }

            if (result.IsCanceled || result.IsCompleted)
            {
                input.AdvanceTo(result.Buffer.Start); // the read that follows reports it
                return false;
            }

            if (!TryParseBuffered(input, result.Buffer, out reply, out _))
            {
                return false;
            }

            matched = _replies.TryTake(out var entry) ? entry.Name : null;
            if (OnReply(matched, reply) is { } command)
            {
                CheckNothingMoreBuffered(input, command, reply);
            }

            return true;
        }
        catch (Exception ex)
        {
            throw Fail(ex, $"waiting for {WaitingFor(matched)}", reading: true);
        }
    }

    /// <summary>The command a read answers, for a message: the entry it matched, else the oldest one (not taken yet).</summary>
    private string WaitingFor(string? matched) => (matched ?? (_replies.TryPeek(out var next) ? next.Name : null)) switch
    {
        ReplyRules.Greeting => "the greeting",
        null => "a reply (none was expected)",
        var name => "the reply to " + name,
    };

    /// <summary>Logs a reply matched to the oldest expected entry (already taken: <paramref name="command"/>) and checks that the command can get it.</summary>
    /// <returns>The entry's name, or <see langword="null"/> when none was expected (a reply read on purpose).</returns>
    private string? OnReply(string? command, SmtpReply reply)
    {
        LogReply(reply);
        if (_replies.Count == 0)
        {
            // Only the reply that leaves nothing pending matters to CheckUnsolicited (one clock read, not one per reply).
            Volatile.Write(ref _lastReplyTimestamp, Stopwatch.GetTimestamp());
        }

        if (command is null)
        {
            return null; // read on purpose with nothing pending (ReceiveReplyAsync): the caller asked for whatever comes
        }

        if (ReplyRules.Check(command, reply) is { } violation)
        {
            throw new SmtpProtocolException(violation);
        }

        if (reply.Code == 221 && ReplyRules.IsClosing(command, reply))
        {
            throw ServiceClosing(reply);
        }

        CountNonMail(command, reply);
        return command;
    }
}
