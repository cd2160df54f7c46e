using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using MailPipe.Channel;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The I/O core: writing command lines, flushing, reading replies; every failure funnels through <c>Fail</c>.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>Writes one command line (not flushed) and queues its pending reply; queue order is wire order.</summary>
    private void WriteCommand(ReadOnlySpan<byte> verb, string name)
    {
        CheckUnsolicited();
        SmtpCommandWriter.Write(Connection.Output, verb);
        ExpectReply(name);
        Log.ClientLine(_protocolLog, name);
    }

    /// <summary>Writes <c>VERB argument</c> (not flushed); with <paramref name="maskArgument"/> the transcript masks the argument as an address.</summary>
    private void WriteCommand(ReadOnlySpan<byte> verb, string name, string argument, bool maskArgument)
    {
        CheckUnsolicited();
        SmtpCommandWriter.Write(Connection.Output, verb, argument);
        ExpectReply(name);
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            Log.ClientLine(_protocolLog, string.Concat(name, " ", maskArgument ? MaskAddress(argument) : argument));
        }
    }

    /// <summary>Writes <c>MAIL FROM:&lt;path&gt; params</c> or <c>RCPT TO:…</c> (not flushed).</summary>
    private void WritePathCommand(ReadOnlySpan<byte> prefix, string name, string path, string? parameters)
    {
        CheckUnsolicited();
        SmtpCommandWriter.WritePathCommand(Connection.Output, prefix, path, parameters);
        ExpectReply(name);
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            var shownParameters = string.IsNullOrWhiteSpace(parameters) ? string.Empty : " " + MaskParameters(parameters.Trim());
            Log.ClientLine(_protocolLog, $"{name}:<{MaskAddress(SmtpCommandWriter.StripBrackets(path).ToString())}>{shownParameters}");
        }
    }

    /// <summary>Queues the pending-reply entry of a command just written; the queue is shared with a concurrent reply reader.</summary>
    private void ExpectReply(string name)
    {
        _pendingReplies.Add(name);
    }

    /// <summary>Parameters as the transcript shows them: the address of DSN ORCPT (RFC 3461 §4.2, <c>ORCPT=type;address</c>) masked like the path's.</summary>
    private string MaskParameters(string parameters)
    {
        if (_options.LogAddresses || parameters.IndexOf("ORCPT=", StringComparison.OrdinalIgnoreCase) < 0)
        {
            return parameters;
        }

        var words = parameters.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            var word = words[i];
            var semicolon = word.IndexOf(';');
            if (word.StartsWith("ORCPT=", StringComparison.OrdinalIgnoreCase) && semicolon > 0)
            {
                words[i] = string.Concat(word.AsSpan(0, semicolon + 1), MaskAddress(word[(semicolon + 1)..]));
            }
        }

        return string.Join(' ', words);
    }

    /// <summary>The address as the transcript shows it: whole when the caller opted in, else with the local part masked.</summary>
    internal string MaskAddress(string address)
    {
        if (_options.LogAddresses || address.Length == 0)
        {
            return address;
        }

        var at = address.LastIndexOf('@');
        return at < 0 ? "***" : string.Concat("***", address.AsSpan(at));
    }

    /// <summary>Sends everything written so far, within <see cref="SmtpSessionOptions.SendTimeout"/>.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask FlushAsync(string activity)
    {
        var output = Connection.Output;
        StartTimer(_options.SendTimeout);
        try
        {
            var result = await output.FlushAsync(_operationCts.Token).ConfigureAwait(false);
            if (result.IsCanceled || result.IsCompleted)
            {
                throw new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed while {activity}.");
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, activity);
        }

        StopTimer();
    }

    /// <summary>Flushes when at least <see cref="SmtpSessionOptions.DataFlushThreshold"/> bytes are buffered, so memory stays bounded for large messages.</summary>
    private ValueTask FlushIfNeededAsync(string activity)
    {
        var output = Connection.Output;
        return output.CanGetUnflushedBytes && output.UnflushedBytes < _options.DataFlushThreshold
            ? ValueTask.CompletedTask
            : FlushAsync(activity);
    }

    /// <summary>Flushes, then reads the next reply.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpReply> FlushAndReadAsync(TimeSpan replyTimeout, string activity)
    {
        await FlushAsync(activity).ConfigureAwait(false);
        RoundTrips++;
        return await ReadReplyAsync(replyTimeout).ConfigureAwait(false);
    }

    /// <summary>Reads one complete reply within <paramref name="timeout"/>; dequeues its pending entry; logs it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<SmtpReply> ReadReplyAsync(TimeSpan timeout)
    {
        var input = Connection.Input;
        string waitingFor;
        waitingFor = _pendingReplies.TryPeek(out var next) ? next.Name : "(unsolicited)";

        StartReadTimer(timeout);
        try
        {
            while (true)
            {
                ValueTask<ReadResult> read;
                if (_readAheadPending)
                {
                    // The read CheckUnsolicited started; one started in an earlier operation needs this one's token.
                    read = _readAhead.IsCompleted || _readAheadOperation == _operationNumber ? _readAhead : TakeEarlierReadAheadAsync(input, _readAhead);
                    _readAhead = default;
                    _readAheadPending = false;
                }
                else
                {
                    read = input.ReadAsync(_readCts.Token);
                }

                var result = await read.ConfigureAwait(false);
                if (TryParseBuffered(input, result.Buffer, out var reply, out var partialLine))
                {
                    StopReadTimer();
                    if (OnReply(reply) is { } command)
                    {
                        CheckNothingMoreBuffered(input, command, reply);
                    }

                    return reply;
                }

                if (result.IsCanceled)
                {
                    throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed locally.");
                }

                if (result.IsCompleted)
                {
                    var partial = _parser.HasPartialReply || partialLine;
                    throw partial
                        ? new SmtpProtocolException(SmtpErrorCode.ProtocolError, $"The server closed the connection in the middle of a reply (waiting for the reply to {waitingFor}).")
                        : new SmtpException(SmtpErrorCode.ConnectionClosed, $"The server closed the connection (waiting for the reply to {waitingFor}).");
                }
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, $"waiting for the reply to {waitingFor}", reading: true);
        }
    }

    /// <summary>Matches a reply to the oldest pending command, logs it and checks that the command can get it.</summary>
    /// <returns>The pending-reply name of the command, or <see langword="null"/> when none was pending (a reply read on purpose).</returns>
    private string? OnReply(SmtpReply reply)
    {
        var command = _pendingReplies.TryTake(out var entry) ? entry.Name : null;

        LogReply(reply);
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
            throw ServiceClosingException(reply);
        }

        return command;
    }

    private void LogReply(SmtpReply reply)
    {
        LastReply = reply;
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            var lines = reply.Lines;
            for (var i = 0; i < lines.Count; i++)
            {
                var separator = i == lines.Count - 1 ? " " : "-";
                Log.ServerLine(_protocolLog, string.Concat(reply.Code.ToString(System.Globalization.CultureInfo.InvariantCulture), separator, _redactServerText && reply.Code == 334 ? "<redacted>" : lines[i]));
            }
        }
    }

    /// <summary>After a 421 the server closes the channel (RFC 5321 §3.8): close our side too, once the reply is returned.</summary>
    private SmtpReply CloseIfServiceClosing(SmtpReply reply)
    {
        if (reply.IsServiceClosing)
        {
            Break("the server sent 421 (service closing transmission channel)");
        }

        return reply;
    }

    /// <summary>A read of the input started before a command was written with no reply pending (<see cref="CheckUnsolicited"/>); the next read takes it.</summary>
    private ValueTask<ReadResult> _readAhead;

    private bool _readAheadPending;

    /// <summary>The <see cref="_operationNumber"/> the read-ahead was started in.</summary>
    private int _readAheadOperation;

    /// <summary>Set while a concurrent reply reader runs: then the writer never reads (no read-ahead).</summary>
    private volatile bool _concurrentReading;

    /// <summary>
    /// Before a command is written with no reply pending: data the server sent unprompted is looked for through the
    /// (decrypted) input, by a read started now and kept for the next reply (a read-ahead; never
    /// <c>Socket.Available</c>, which counts TLS records such as TLS 1.3 session tickets). Blank lines are skipped by the
    /// parser; only a complete reply counts: 421 (or 221) means the service is closing — <see cref="SmtpErrorCode.ServiceNotAvailable"/>
    /// — and anything else is a protocol violation. Either way the command is not written and the connection is closed.
    /// </summary>
    /// <exception cref="SmtpException">A complete reply or the end of the stream was already there.</exception>
    private void CheckUnsolicited()
    {
        if (_concurrentReading || PendingReplyCount > 0 || _connection is not { } connection)
        {
            return;
        }

        var input = connection.Input;
        if (!_readAheadPending && connection.NothingToRead())
        {
            // Plaintext with nothing received: a read started now could not complete, so none is (it would make the
            // next reply's read always complete through the socket engine instead of at once; issue #9 acceptance 5).
            return;
        }

        if (!_readAheadPending)
        {
            // With the operation's read token, as the read it stands for would have (its deadline and the caller's token apply).
#pragma warning disable CA2012 // Kept on purpose: the read-ahead is consumed exactly once, here or by the next read (TakeReadAheadAsync).
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
        if (command == "STARTTLS" || PendingReplyCount > 0 || reply.IsServiceClosing || !input.TryRead(out var more))
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
