using System.Globalization;
using System.Text;

namespace MailPipe.Cli;

/// <summary>
/// Sends a batch of messages over one SMTP connection: greeting, EHLO once (HELO when EHLO is not understood), then
/// MAIL, RCPT, DATA and the content for each message, RSET after a refused transaction, QUIT at the end.
/// </summary>
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
        var pending = new Queue<OutgoingMessage>(messages);
        if (messages.All(m => m.InputError is not null))
        {
            while (pending.Count > 0)
            {
                report(InputFailure(pending.Dequeue()));
            }

            return;
        }

        var session = new AsyncSmtpSession(_sessionOptions);
        await using (session.ConfigureAwait(false))
        {
            var failure = await OpenAsync(session, cancellationToken).ConfigureAwait(false);
            while (pending.Count > 0)
            {
                var message = pending.Dequeue();
                if (message.InputError is not null)
                {
                    report(InputFailure(message));
                }
                else if (failure is not null)
                {
                    report(NotSent(message, failure.Value.ExitCode, failure.Value.Reason));
                }
                else
                {
                    var result = await SendOneAsync(session, message, cancellationToken).ConfigureAwait(false);
                    report(result);
                    if (!session.IsConnected)
                    {
                        var code = result.Outcome == MessageOutcome.NotSent && result.ExitCode != ExitCodes.UsageOrInput ? result.ExitCode : ExitCodes.ConnectionFailed;
                        failure = (code, "not sent: the connection was lost during an earlier message");
                    }
                }
            }

            if (session.State == SmtpSessionState.Connected)
            {
                try
                {
                    await session.QuitAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (SmtpException)
                {
                    // Every message already has its outcome; a failed QUIT changes none of them.
                }
            }
        }
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

            var hello = await session.EhloAsync(_heloName, cancellationToken).ConfigureAwait(false);
            if (hello.Code is 500 or 502 && session.IsConnected)
            {
                hello = await session.HeloAsync(_heloName, cancellationToken).ConfigureAwait(false);
            }

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
        var content = message.Content!;
        var result = new MessageResult
        {
            Index = message.Index,
            File = message.File,
            From = message.ReversePath,
            Outcome = MessageOutcome.NotSent,
            ExitCode = ExitCodes.UsageOrInput,
        };

        ContentInfo info;
        try
        {
            info = await content.OpenAsync(session.Capabilities, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return result with { Error = $"cannot read {message.File}: {ex.Message}" };
        }

        var recipients = new List<RecipientResult>();
        try
        {
            var mailReply = await session.MailFromAsync(message.ReversePath ?? string.Empty, MailParameters(session.Capabilities, message, info), cancellationToken).ConfigureAwait(false);
            result = result with { MailReply = ReplyInfo.From(mailReply) };
            if (!mailReply.IsPositiveCompletion)
            {
                await ResetAsync(session, cancellationToken).ConfigureAwait(false);
                return result with { Outcome = MessageOutcome.Refused, ExitCode = ExitCodes.SenderRefused };
            }

            foreach (var recipient in message.Recipients)
            {
                var reply = await session.RcptToAsync(recipient, parameters: null, cancellationToken).ConfigureAwait(false);
                recipients.Add(new RecipientResult(recipient, ReplyInfo.From(reply)));
                if (!session.IsConnected)
                {
                    break;
                }
            }

            result = result with { Recipients = recipients };
            if (!session.IsConnected)
            {
                return result with { ExitCode = ExitCodes.ConnectionFailed, Error = $"the server closed the connection: {recipients[^1].Reply}" };
            }

            if (!recipients.Exists(r => r.Accepted))
            {
                await ResetAsync(session, cancellationToken).ConfigureAwait(false);
                return result with { Outcome = MessageOutcome.Refused, ExitCode = ExitCodes.NoRecipientAccepted };
            }

            var dataReply = await session.DataAsync(cancellationToken).ConfigureAwait(false);
            result = result with { DataReply = ReplyInfo.From(dataReply) };
            if (dataReply.Code != 354)
            {
                await ResetAsync(session, cancellationToken).ConfigureAwait(false);
                return result with { Outcome = MessageOutcome.Refused, ExitCode = ExitCodes.MessageRefused };
            }
        }
        catch (SmtpException ex)
        {
            return result with { Recipients = recipients, ExitCode = ExitCodes.ForError(ex.ErrorCode), Error = ex.Message };
        }

        try
        {
            var finalReply = await content.SendAsync(session, cancellationToken).ConfigureAwait(false);
            result = result with { FinalReply = ReplyInfo.From(finalReply) };
            return finalReply.IsPositiveCompletion
                ? result with { Outcome = MessageOutcome.Accepted, ExitCode = ExitCodes.Success }
                : result with { Outcome = MessageOutcome.Refused, ExitCode = ExitCodes.MessageRefused };
        }
        catch (SmtpException ex)
        {
            // Once the data has started, a lost connection may have come before or after the server took the message.
            return result with { Outcome = MessageOutcome.Unknown, ExitCode = ExitCodes.OutcomeUnknown, Error = ex.Message };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The file failed mid-way: the session closed the connection without ending the data, so nothing was delivered.
            return result with { Error = $"cannot read {message.File}: {ex.Message}; the connection was closed without ending the message" };
        }
    }

    /// <summary>The MAIL FROM parameters the content and the server call for: SIZE (RFC 1870), BODY=8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531).</summary>
    private static string? MailParameters(SmtpCapabilities capabilities, OutgoingMessage message, ContentInfo info)
    {
        var parameters = new StringBuilder();
        if (capabilities.Contains("SIZE"))
        {
            parameters.Append(CultureInfo.InvariantCulture, $"SIZE={info.Size} ");
        }

        if (info.EightBit && capabilities.Supports8BitMime)
        {
            parameters.Append("BODY=8BITMIME ");
        }

        var international = !Ascii.IsValid(message.ReversePath ?? string.Empty) || message.Recipients.Any(r => !Ascii.IsValid(r));
        if (international && capabilities.SupportsSmtpUtf8)
        {
            parameters.Append("SMTPUTF8 ");
        }

        return parameters.Length == 0 ? null : parameters.ToString().TrimEnd();
    }

    /// <summary>Ends a refused transaction with RSET; a failure here only closes the connection, the refusal stands.</summary>
    private static async Task ResetAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        if (session.State != SmtpSessionState.Connected)
        {
            return;
        }

        try
        {
            await session.RsetAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpException)
        {
            // The session is disconnected now; the messages after this one are reported as not sent.
        }
    }

    private static async Task QuietQuitAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        if (session.State != SmtpSessionState.Connected)
        {
            return;
        }

        try
        {
            await session.QuitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (SmtpException)
        {
            await session.DisconnectAsync().ConfigureAwait(false);
        }
    }

    private static MessageResult InputFailure(OutgoingMessage message) => new()
    {
        Index = message.Index,
        File = message.File,
        From = message.ReversePath,
        Outcome = MessageOutcome.NotSent,
        ExitCode = ExitCodes.UsageOrInput,
        Error = message.InputError,
    };

    private static MessageResult NotSent(OutgoingMessage message, int exitCode, string reason) => new()
    {
        Index = message.Index,
        File = message.File,
        From = message.ReversePath,
        Outcome = MessageOutcome.NotSent,
        ExitCode = exitCode,
        Error = reason,
    };
}
