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
        using var operation = BeginOperation(cancellationToken, allowPendingReplies: true);
        _channel.WriteRawCommand(line);
        _mailDeclaredSmtpUtf8 = null;
        await _channel.FlushAsync("sending a command").ConfigureAwait(false);
    }

    /// <summary>Reads the next reply from the server (the seed's <c>ReceiveResponse</c>), within <see cref="SmtpSessionOptions.ReceiveTimeout"/>.</summary>
    /// <param name="cancellationToken">Cancels the wait; the connection is then closed.</param>
    /// <returns>The reply; a negative reply is returned, not thrown. After a 421, or the 221 to a QUIT sent with <see cref="SendCommandAsync"/>, the connection is closed (<see cref="IsConnected"/> is <see langword="false"/>; <see cref="ConnectAsync(string, int, bool, CancellationToken)"/> again to go on).</returns>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> ReceiveReplyAsync(CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken, allowData: true, allowPendingReplies: true);
        var isGreeting = Greeting is null && _channel.GreetingExpected;
        var dataPhase = State == SmtpSessionState.SendingData;
        var reply = await _channel.ReadReplyAsync(dataPhase ? _options.DataTerminationTimeout : _options.ReceiveTimeout).ConfigureAwait(false);
        if (dataPhase)
        {
            // A reply during message data means the data phase is over (the caller sent the end of data with SendBytesAsync, or the server gave up).
            State = SmtpSessionState.Connected;
        }

        if (reply.Code != 334)
        {
            _channel.RedactServerText = false; // a raw AUTH exchange is over
        }

        if (isGreeting)
        {
            Greeting = reply;
        }

        if (reply.Code == 221)
        {
            // The reply to a QUIT sent with SendCommandAsync: the server closes the channel after it (RFC 5321 §4.1.1.10), so the session does too, as QuitAsync does.
            _channel.Break("the server sent 221 (service closing transmission channel)");
            return reply;
        }

        return _channel.CloseIfServiceClosing(reply);
    }
}
