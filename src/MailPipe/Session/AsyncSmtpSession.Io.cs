using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The I/O core: writing command lines, flushing, reading replies; every failure funnels through <c>Fail</c>.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>Writes one command line (not flushed) and queues its pending reply; queue order is wire order.</summary>
    private void WriteCommand(ReadOnlySpan<byte> verb, string name)
    {
        SmtpCommandWriter.Write(Connection.Output, verb);
        ExpectReply(name);
        Log.ClientLine(_protocolLog, name);
    }

    /// <summary>Writes <c>VERB argument</c> (not flushed); with <paramref name="maskArgument"/> the transcript masks the argument as an address.</summary>
    private void WriteCommand(ReadOnlySpan<byte> verb, string name, string argument, bool maskArgument)
    {
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
        lock (_pendingReplies)
        {
            _pendingReplies.Enqueue(name);
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
        lock (_pendingReplies)
        {
            waitingFor = _pendingReplies.TryPeek(out var next) ? next : "(unsolicited)";
        }

        StartReadTimer(timeout);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(_readCts.Token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var reader = new SequenceReader<byte>(buffer);
                var complete = false;
                SmtpReply? reply = null;
                try
                {
                    complete = _parser.TryParse(ref reader, out reply);
                }
                finally
                {
                    // Consumed: every complete line (the parser keeps them); examined: all, unless a reply ended here.
                    input.AdvanceTo(reader.Position, complete ? reader.Position : buffer.End);
                }

                if (complete)
                {
                    StopReadTimer();
                    OnReply(reply!);
                    return reply!;
                }

                if (result.IsCanceled)
                {
                    throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed locally.");
                }

                if (result.IsCompleted)
                {
                    var partial = _parser.HasPartialReply || !reader.End;
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

    private void OnReply(SmtpReply reply)
    {
        lock (_pendingReplies)
        {
            _pendingReplies.TryDequeue(out _);
        }

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
}
