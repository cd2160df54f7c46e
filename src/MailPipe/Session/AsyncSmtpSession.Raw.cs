namespace MailPipe;

/// <summary>The seed's extension points: <c>SendCommand</c> and <c>ReceiveResponse</c>.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>
    /// Sends one command line for a command MailPipe has no method for (the seed's <c>SendCommand</c>), without reading
    /// a reply: read it with <see cref="ReceiveReplyAsync"/>. Several commands may be sent before their replies are
    /// read, where the server allows it (PIPELINING, RFC 2920).
    /// </summary>
    /// <param name="commandLine">The command, such as <c>XFOO arg</c>; one trailing CRLF is allowed and dropped.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>A task that completes when the line is sent.</returns>
    /// <exception cref="ArgumentException"><paramref name="commandLine"/> is empty or holds CR, LF or NUL other than one trailing CRLF; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure or send timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task SendCommandAsync(string commandLine, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(commandLine);
        var line = SmtpCommandWriter.TrimLineEnd(commandLine);
        ArgumentException.ThrowIfNullOrWhiteSpace(line, nameof(commandLine));
        SmtpCommandWriter.ValidateArgument(line, nameof(commandLine));
        BeginOperation(cancellationToken, allowPendingReplies: true);
        try
        {
            CheckUnsolicited();
            SmtpCommandWriter.WriteLine(Connection.Output, line);
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            // A raw AUTH (the seed's way) starts an exchange whose continuation lines are secrets: name them "AUTH".
            var inAuthExchange = _redactServerText || line.StartsWith("AUTH ", StringComparison.OrdinalIgnoreCase);
            ExpectReply(inAuthExchange ? "AUTH" : space < 0 ? line : line[..space]);
            if (_protocolLog.IsEnabled(Microsoft.Extensions.Logging.LogLevel.Trace))
            {
                Log.ClientLine(_protocolLog, RedactForTranscript(line));
            }

            _redactServerText = inAuthExchange;

            await FlushAsync("sending a command").ConfigureAwait(false);
        }
        finally
        {
            EndOperation();
        }
    }

    /// <summary>Reads the next reply from the server (the seed's <c>ReceiveResponse</c>), within <see cref="SmtpSessionOptions.ReceiveTimeout"/>.</summary>
    /// <param name="cancellationToken">Cancels the wait; the connection is then closed.</param>
    /// <returns>The reply; a negative reply is returned, not thrown.</returns>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> ReceiveReplyAsync(CancellationToken cancellationToken = default)
    {
        BeginOperation(cancellationToken, allowData: true, allowPendingReplies: true);
        try
        {
            bool isGreeting;
            isGreeting = Greeting is null && _pendingReplies.TryPeek(out var next) && next.Name == GreetingEntry;

            var reply = await ReadReplyAsync(State == SmtpSessionState.SendingData ? _options.DataTerminationTimeout : _options.ReceiveTimeout).ConfigureAwait(false);
            if (State == SmtpSessionState.SendingData)
            {
                // A reply during message data means the data phase is over (the caller sent the end of data with SendBytesAsync, or the server gave up).
                State = SmtpSessionState.Connected;
            }

            if (reply.Code != 334)
            {
                _redactServerText = false; // a raw AUTH exchange is over
            }

            if (isGreeting)
            {
                Greeting = reply;
            }

            return CloseIfServiceClosing(reply);
        }
        finally
        {
            EndOperation();
        }
    }

    /// <summary>What the transcript shows of a caller's raw command: AUTH arguments are always redacted, addresses masked.</summary>
    private string RedactForTranscript(string line)
    {
        if (_redactServerText && !line.StartsWith("AUTH ", StringComparison.OrdinalIgnoreCase))
        {
            return line == "*" ? line : "<redacted>"; // a continuation line of a raw AUTH exchange
        }

        if (line.StartsWith("AUTH ", StringComparison.OrdinalIgnoreCase))
        {
            var parts = line.Split(' ', 3);
            return parts.Length > 2 ? $"{parts[0]} {parts[1]} <redacted>" : line;
        }

        if (!_options.LogAddresses && (line.StartsWith("MAIL ", StringComparison.OrdinalIgnoreCase)
            || line.StartsWith("RCPT ", StringComparison.OrdinalIgnoreCase) || line.StartsWith("VRFY ", StringComparison.OrdinalIgnoreCase)))
        {
            return line[..5] + "<masked>";
        }

        return line;
    }
}
