using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MailPipe.Transmission;

/// <summary>Writing command lines, flushing, reading and matching replies; every failure funnels through <see cref="Fail"/>.</summary>
internal sealed partial class SmtpChannel
{
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
        StartSendDeadline(_options.SendTimeout);
        try
        {
            var result = await output.FlushAsync(_sendCts.Token).ConfigureAwait(false);
            if (result.IsCanceled || result.IsCompleted)
            {
                throw new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed while {activity}.");
            }
        }
        catch (Exception ex)
        {
            throw Fail(ex, activity);
        }

        StopSendDeadline();
    }

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
        var waitingFor = _replies.TryPeek(out var next) ? next.Name : "(unsolicited)";
        StartReadDeadline(timeout);
        try
        {
            while (true)
            {
                var result = await NextReadAsync(input).ConfigureAwait(false);
                if (TryParseBuffered(input, result.Buffer, out var reply, out var partialLine))
                {
                    StopReadDeadline();
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

    /// <summary>Matches a reply to the oldest expected entry, logs it and checks that the command can get it.</summary>
    /// <returns>The entry's name, or <see langword="null"/> when none was expected (a reply read on purpose).</returns>
    private string? OnReply(SmtpReply reply)
    {
        var command = _replies.TryTake(out var entry) ? entry.Name : null;
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
            throw ServiceClosing(reply);
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
                Log.ServerLine(_protocolLog, string.Concat(reply.Code.ToString(System.Globalization.CultureInfo.InvariantCulture), separator, RedactServerText && reply.Code == 334 ? "<redacted>" : lines[i]));
            }
        }
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
            var semicolon = word.IndexOf(';', StringComparison.Ordinal);
            if (word.StartsWith("ORCPT=", StringComparison.OrdinalIgnoreCase) && semicolon > 0)
            {
                words[i] = string.Concat(word.AsSpan(0, semicolon + 1), MaskAddress(word[(semicolon + 1)..]));
            }
        }

        return string.Join(' ', words);
    }

    /// <summary>The address as the transcript shows it: whole when the caller opted in, else with the local part masked.</summary>
    /// <param name="address">The address.</param>
    /// <returns>What the transcript shows.</returns>
    public string MaskAddress(string address)
    {
        if (_options.LogAddresses || address.Length == 0)
        {
            return address;
        }

        var at = address.LastIndexOf('@');
        return at < 0 ? "***" : string.Concat("***", address.AsSpan(at));
    }
}
