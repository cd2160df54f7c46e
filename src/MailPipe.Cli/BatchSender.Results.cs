namespace MailPipe.Cli;

/// <content>
/// The envelope check of <c>--quit-after mail|rcpt</c>, and how a session's results become the CLI's: each message's
/// outcome and exit code, the reasons of a session that could not be used, and the quiet QUIT at the end.
/// </content>
internal sealed partial class BatchSender
{
    /// <summary><c>--quit-after mail|rcpt</c>: MAIL FROM and, for rcpt, every RCPT TO of the first message, then QUIT; nothing is sent.</summary>
    private async Task CheckEnvelopeAsync(AsyncSmtpSession session, IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> report, CancellationToken cancellationToken)
    {
        var first = messages[0];
        var envelope = first.Envelope!;

        // As a send decides it (TransactionSender.Prepare): SMTPUTF8 for a non-ASCII address where the server offers it,
        // else the A-label of a Unicode domain; a local part that is not ASCII (or --smtputf8) without it: no MAIL, exit 6.
        var offered = session.Capabilities.SupportsSmtpUtf8;
        var smtpUtf8 = envelope.SmtpUtf8 || (envelope.HasNonAsciiAddress && (offered || SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) is not null));
        MessageResult result;
        try
        {
            if (smtpUtf8 && !offered)
            {
                var why = SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) ?? "SMTPUTF8 (RFC 6531), asked for by --smtputf8";
                report(NotSent(first, ExitCodes.MessageRefused, $"The envelope needs {why}, which the server does not offer; MAIL was not sent."));
                foreach (var message in messages.Skip(1))
                {
                    report(QuitBefore(message));
                }

                return;
            }

            var mail = await session.MailFromAsync(SmtpAddressRules.ForServer(envelope.ReversePath, smtpUtf8), smtpUtf8 ? "SMTPUTF8" : null, cancellationToken).ConfigureAwait(false);
            var recipients = new List<RecipientResult>();
            if (_quitAfter == QuitAfter.Rcpt && mail.IsPositiveCompletion)
            {
                foreach (var recipient in envelope.Recipients)
                {
                    var reply = await session.RcptToAsync(SmtpAddressRules.ForServer(recipient.Address, smtpUtf8), cancellationToken: cancellationToken).ConfigureAwait(false);
                    recipients.Add(new RecipientResult(recipient.Address, ReplyInfo.From(reply)));
                    if (!session.IsConnected)
                    {
                        break;
                    }
                }
            }

            var refused = mail.IsServiceClosing || recipients.Any(r => r.Reply?.Code == 421) ? ExitCodes.ConnectionFailed
                : !mail.IsPositiveCompletion ? ExitCodes.SenderRefused
                : _quitAfter == QuitAfter.Rcpt && !recipients.Any(r => r.Accepted) ? ExitCodes.NoRecipientAccepted
                : ExitCodes.Success;
            result = QuitBefore(first) with
            {
                MailReply = ReplyInfo.From(mail),
                Recipients = recipients.Count > 0 ? recipients : QuitBefore(first).Recipients,
                Outcome = refused == ExitCodes.Success ? MessageOutcome.NotSent : MessageOutcome.Refused,
                ExitCode = refused,
            };
        }
        catch (SmtpException ex)
        {
            result = NotSent(first, ExitCodes.ForError(ex.ErrorCode), Describe(_server, ex, _tlsMode));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Ctrl+C or SIGTERM while MAIL or RCPT waited for its reply: MailPipe closed the connection; no data was sent.
            result = NotSent(first, ExitCodes.ConnectionFailed, $"not sent: {Interrupted}");
        }

        report(result);
        foreach (var message in messages.Skip(1))
        {
            report(QuitBefore(message));
        }
    }

    private MessageResult QuitBefore(OutgoingMessage message) =>
        NotSent(message, ExitCodes.Success, $"not sent: --quit-after {_quitAfter.ToString().ToLowerInvariant()}");

    /// <summary>
    /// The exit code and outcome of a library result. A 421 at any stage is the server closing the transmission
    /// channel (RFC 5321 §3.8), not a verdict on the sender, the recipients or the message: nothing was taken, so it is
    /// <see cref="ExitCodes.ConnectionFailed"/>, as a 421 greeting, EHLO or AUTH reply is.
    /// </summary>
    /// <param name="result">What <c>SendAsync</c> returned.</param>
    /// <returns>The code (see <see cref="ExitCodes"/>) and the CLI's outcome.</returns>
    public static (int ExitCode, MessageOutcome Outcome) Classify(SmtpSendResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return result.Outcome switch
        {
            SmtpSendOutcome.Accepted => (ExitCodes.Success, MessageOutcome.Accepted),
            SmtpSendOutcome.Refused when IsServiceClosing(result) => (ExitCodes.ConnectionFailed, MessageOutcome.Refused),
            SmtpSendOutcome.Refused when result.MailReply is { IsPositiveCompletion: false } => (ExitCodes.SenderRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Refused when !result.Recipients.Any(r => r.Accepted) => (ExitCodes.NoRecipientAccepted, MessageOutcome.Refused),
            SmtpSendOutcome.Refused => (ExitCodes.MessageRefused, MessageOutcome.Refused),
            SmtpSendOutcome.Unknown => (ExitCodes.OutcomeUnknown, MessageOutcome.Unknown),
            _ => (result.Exception is SmtpException ex ? ExitCodes.ForError(ex.ErrorCode) : ExitCodes.ConnectionFailed, MessageOutcome.NotSent),
        };
    }

    private static bool IsServiceClosing(SmtpSendResult result) =>
        result.MailReply is { IsServiceClosing: true } || result.DataReply is { IsServiceClosing: true } || result.FinalReply is { IsServiceClosing: true }
        || result.Recipients.Any(static r => r.Reply is { IsServiceClosing: true });

    /// <summary>Why a session could not be opened, as the CLI says it: the library's message with a hint at the option that helps.</summary>
    /// <param name="server">The server.</param>
    /// <param name="exception">The failure.</param>
    /// <param name="tlsMode">How the connection was protected (a greeting that never came suggests a port of implicit TLS).</param>
    /// <returns>The reason.</returns>
    public static string Describe(ServerAddress server, SmtpException exception, SmtpTlsMode tlsMode)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(exception);

        // MailPipe's certificate and clear-text AUTH messages end with a hint at its API; the CLI names its own options instead.
        var message = exception.Message
            .Replace(" Set SmtpTlsOptions.AcceptCertificateNameMismatch (configuration key Tls:AcceptCertificateNameMismatch) to accept it.", string.Empty, StringComparison.Ordinal)
            .Replace(" Trust its root with SmtpTlsOptions.TrustedRootCertificates (configuration key Tls:CaFile) if it is a private CA.", string.Empty, StringComparison.Ordinal)
            .Replace(" A port that greets in plain text first (as 25 and 587 do) starts TLS with STARTTLS: use SmtpTlsMode.StartTlsRequired there, not implicit TLS.", string.Empty, StringComparison.Ordinal)
            .Replace("(start TLS first, or set SmtpSessionOptions.AllowCleartextAuthentication)", "(use --tls or --starttls, or --allow-cleartext-auth on a trusted network)", StringComparison.Ordinal)
            .Replace("(send EHLO first; some servers offer AUTH only after STARTTLS)", "(some servers offer AUTH only after STARTTLS: --starttls)", StringComparison.Ordinal);
        var implicitTlsAdvice = message.IndexOf(" No greeting came at all", StringComparison.Ordinal);
        if (implicitTlsAdvice > 0)
        {
            // The greeting's silence is hinted at below with --tls.
            message = message[..implicitTlsAdvice];
        }

        return exception.ErrorCode switch
        {
            SmtpErrorCode.StartTlsNotOffered => $"--starttls: {message}",
            SmtpErrorCode.BadCertificateName => $"TLS with {server} failed: {message} (--accept-name-mismatch accepts such a certificate; --tls-name sets the name to check)",
            SmtpErrorCode.BadCertificate => $"TLS with {server} failed: {message} (--ca-file trusts a private certificate authority)",
            SmtpErrorCode.TlsHandshakeFailed when tlsMode == SmtpTlsMode.Implicit && message.Contains("answered in plain text", StringComparison.Ordinal)
                => $"TLS with {server} failed: {message} (--tls expects TLS from the first byte, as on port 465; a port that greets in plain text first, as 25 and 587 do, needs --starttls)",
            SmtpErrorCode.TlsHandshakeFailed or SmtpErrorCode.StartTlsResponseInjection => $"TLS with {server} failed: {message}",
            SmtpErrorCode.AuthenticationError => $"authentication failed: {message}",
            SmtpErrorCode.ConnectionRefused => $"cannot connect to {server}: connection refused",
            SmtpErrorCode.HostNotFound => $"cannot connect to {server}: host not found",
            SmtpErrorCode.TimedOut or SmtpErrorCode.ConnectionClosed when tlsMode != SmtpTlsMode.Implicit && message.Contains("waiting for the greeting", StringComparison.Ordinal)
                => $"cannot talk to {server}: {message} (no greeting came: a port that expects TLS from the first byte, as 465 does, needs --tls)",
            _ => $"cannot talk to {server}: {message}",
        };
    }

    private static MessageResult ToMessageResult(OutgoingMessage message, SmtpSendResult result)
    {
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

    /// <summary>Ends the session with QUIT, waiting a few seconds at most for its reply; closes it when the QUIT fails, times out or is cancelled.</summary>
    /// <param name="session">The session.</param>
    /// <param name="cancellationToken">Cancelled (Ctrl+C, SIGTERM): the connection is closed without QUIT, or the QUIT abandoned.</param>
    /// <returns>A task.</returns>
    internal static async Task QuietQuitAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        if (!session.IsConnected)
        {
            return;
        }

        if (cancellationToken.IsCancellationRequested)
        {
            await session.DisconnectAsync().ConfigureAwait(false); // interrupted: no QUIT to wait for
            return;
        }

        // Every message already has its outcome, which neither the QUIT's reply nor its failure changes: a server that
        // does not answer gets a few seconds (not the reply timeout, 5 minutes by default, before the summary), and an
        // interruption meanwhile (Ctrl+C, SIGTERM) only abandons the QUIT.
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await session.QuitAsync(limit.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is SmtpException or OperationCanceledException)
        {
            await session.DisconnectAsync().ConfigureAwait(false);
        }
    }


    /// <summary>A message that never reached the server.</summary>
    /// <param name="message">The message.</param>
    /// <param name="exitCode">Its exit code.</param>
    /// <param name="reason">Why.</param>
    /// <returns>The result.</returns>
    public static MessageResult NotSent(OutgoingMessage message, int exitCode, string reason)
    {
        ArgumentNullException.ThrowIfNull(message);
        return new()
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

    private static MessageResult Unknown(OutgoingMessage message, string reason) =>
        NotSent(message, ExitCodes.OutcomeUnknown, reason) with { Outcome = MessageOutcome.Unknown };
}
