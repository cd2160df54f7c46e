namespace MailPipe.Cli;

/// <summary>
/// Sends a batch of messages over one SMTP connection: the greeting, EHLO once (HELO when EHLO is not understood),
/// then each message as one mail transaction with <see cref="AsyncSmtpSession.SendAsync(SmtpMessage, CancellationToken)"/>
/// (pipelined when the server offers PIPELINING, BDAT with CHUNKING), QUIT at the end.
/// </summary>
/// <remarks>
/// Messages go one transaction at a time rather than through <c>SendBatchAsync</c>: a file that fails to read
/// mid-message then costs only that message, and each result is reported as soon as it is known.
/// </remarks>
internal sealed class BatchSender
{
    private readonly ServerAddress _server;
    private readonly string _heloName;
    private readonly SmtpSessionOptions _sessionOptions;

    /// <summary>Creates a sender.</summary>
    /// <param name="server">Where to connect.</param>
    /// <param name="heloName">The client's name for EHLO/HELO.</param>
    /// <param name="sessionOptions">Timeouts and logging of the session.</param>
    public BatchSender(ServerAddress server, string heloName, SmtpSessionOptions sessionOptions)
    {
        _server = server;
        _heloName = heloName;
        _sessionOptions = sessionOptions;
    }

    /// <summary>Sends every message that has no input error, reporting each result as soon as it is known, in batch order.</summary>
    /// <param name="messages">The batch.</param>
    /// <param name="report">Receives each message's result.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed (a message in flight is never completed).</param>
    /// <returns>A task that completes when every message is reported.</returns>
    public async Task SendAsync(IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> report, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(report);
        if (messages.All(m => m.InputError is not null))
        {
            foreach (var message in messages)
            {
                report(NotSent(message, ExitCodes.UsageOrInput, message.InputError!));
            }

            return;
        }

        var session = new AsyncSmtpSession(_sessionOptions);
        await using (session.ConfigureAwait(false))
        {
            var failure = await OpenAsync(session, cancellationToken).ConfigureAwait(false);
            foreach (var message in messages)
            {
                if (message.InputError is not null)
                {
                    report(NotSent(message, ExitCodes.UsageOrInput, message.InputError));
                    continue;
                }

                if (failure is null && !session.IsConnected)
                {
                    failure = (ExitCodes.ConnectionFailed, "not sent: the connection was lost during an earlier message");
                }

                report(failure is { } why
                    ? NotSent(message, why.ExitCode, why.Reason)
                    : await SendOneAsync(session, message, cancellationToken).ConfigureAwait(false));
            }

            if (session.State == SmtpSessionState.Connected)
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The exit code and outcome of a library result.</summary>
    /// <param name="result">What <c>SendAsync</c> returned.</param>
    /// <returns>The code (see <see cref="ExitCodes"/>) and the CLI's outcome.</returns>
    public static (int ExitCode, MessageOutcome Outcome) Classify(SmtpSendResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Outcome switch
        {
            SmtpSendOutcome.Accepted => (ExitCodes.Success, MessageOutcome.Accepted),
            SmtpSendOutcome.Refused when result.MailReply is { IsPositiveCompletion: false } => (ExitCodes.SenderRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Refused when !result.Recipients.Any(r => r.Accepted) => (ExitCodes.NoRecipientAccepted, MessageOutcome.Refused),
            SmtpSendOutcome.Refused => (ExitCodes.MessageRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Unknown => (ExitCodes.OutcomeUnknown, MessageOutcome.Unknown),
            _ => (result.Exception is { } ex ? ExitCodes.ForError(ex.ErrorCode) : ExitCodes.ConnectionFailed, MessageOutcome.NotSent),
        };
    }

    /// <summary>Connects, reads the greeting and introduces the client; returns why the connection is unusable, or <see langword="null"/>.</summary>
    private async Task<(int ExitCode, string Reason)?> OpenAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        try
        {
            var greeting = await session.ConnectAsync(_server.Host, _server.Port, waitForGreeting: true, cancellationToken).ConfigureAwait(false);
            if (greeting is { IsPositiveCompletion: false })
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused the session: {ReplyInfo.From(greeting)}");
            }

            var hello = await session.HelloAsync(_heloName, cancellationToken).ConfigureAwait(false);
            if (!hello.IsPositiveCompletion)
            {
                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused EHLO/HELO {_heloName}: {ReplyInfo.From(hello)}");
            }

            return null;
        }
        catch (SmtpException ex)
        {
            return (ExitCodes.ForError(ex.ErrorCode), $"cannot talk to {_server}: {ex.Message}");
        }
    }

    private static async Task<MessageResult> SendOneAsync(AsyncSmtpSession session, OutgoingMessage message, CancellationToken cancellationToken)
    {
        SmtpEnvelope envelope;
        try
        {
            envelope = new SmtpEnvelope(message.ReversePath ?? string.Empty, message.Recipients.Select(r => new SmtpRecipient(r)));
        }
        catch (ArgumentException ex)
        {
            return NotSent(message, ExitCodes.UsageOrInput, $"not a usable envelope: {ex.Message}");
        }

        SmtpMessage smtpMessage;
        try
        {
            smtpMessage = await message.Content!.OpenAsync(envelope, session.Capabilities, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return NotSent(message, ExitCodes.UsageOrInput, $"cannot read {message.File}: {ex.Message}");
        }

        SmtpSendResult result;
        try
        {
            result = await session.SendAsync(smtpMessage, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The session closed the connection without ending the data: nothing was delivered.
            return NotSent(message, ExitCodes.UsageOrInput, $"cannot read {message.File}: {ex.Message}; the connection was closed without ending the message");
        }

        var (exitCode, outcome) = Classify(result);
        return new MessageResult
        {
            Index = message.Index,
            File = message.File,
            From = result.Envelope.ReversePath,
            Recipients = [.. result.Recipients.Select(r => new RecipientResult(r.Recipient.Address, r.Reply is null ? null : ReplyInfo.From(r.Reply)))],
            MailReply = result.MailReply is null ? null : ReplyInfo.From(result.MailReply),
            DataReply = result.DataReply is null ? null : ReplyInfo.From(result.DataReply),
            FinalReply = result.FinalReply is null ? null : ReplyInfo.From(result.FinalReply),
            Outcome = outcome,
            ExitCode = exitCode,
            Error = result.Exception?.Message,
        };
    }

    private static async Task QuietQuitAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        try
        {
            await session.QuitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpException)
        {
            // Every message already has its outcome; a failed QUIT changes none of them.
            await session.DisconnectAsync().ConfigureAwait(false);
        }
    }

    private static MessageResult NotSent(OutgoingMessage message, int exitCode, string reason) => new()
    {
        Index = message.Index,
        File = message.File,
        From = message.ReversePath,
        Recipients = [.. message.Recipients.Select(r => new RecipientResult(r, null))],
        Outcome = MessageOutcome.NotSent,
        ExitCode = exitCode,
        Error = reason,
    };
}
