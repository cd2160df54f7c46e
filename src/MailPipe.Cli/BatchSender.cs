using System.Diagnostics;

namespace MailPipe.Cli;

/// <summary>Where <c>--quit-after</c> ends the session: after that step, QUIT is sent (swaks' <c>--quit-after</c>).</summary>
internal enum QuitAfter
{
    /// <summary>Send the messages.</summary>
    None,

    /// <summary>After the TCP connection (and implicit TLS is not started).</summary>
    Connect,

    /// <summary>After the greeting.</summary>
    Banner,

    /// <summary>After EHLO (or HELO).</summary>
    Ehlo,

    /// <summary>After STARTTLS and the second EHLO (or after EHLO when no TLS was started).</summary>
    Tls,

    /// <summary>After AUTH (or where AUTH would be).</summary>
    Auth,

    /// <summary>After MAIL FROM of the first message.</summary>
    Mail,

    /// <summary>After the RCPT TOs of the first message: does the server take these recipients?</summary>
    Rcpt,
}

/// <summary>One step of the session and the server's reply to it, reported with <c>--quit-after</c>.</summary>
/// <param name="Step">connect, banner, ehlo, helo, starttls, auth.</param>
/// <param name="Reply">The reply, or <see langword="null"/> for the TCP connection.</param>
internal sealed record SessionStep(string Step, ReplyInfo? Reply);

/// <summary>What one connection did with a batch.</summary>
/// <param name="Results">One result per message, in batch order.</param>
/// <param name="Elapsed">From the start of the connect to the last reply of the batch (QUIT not included).</param>
/// <param name="Tls">The TLS parameters, or <see langword="null"/> without TLS.</param>
/// <param name="AuthenticatedAs">The user name when AUTH succeeded, else <see langword="null"/>.</param>
/// <param name="AuthMechanism">The mechanism AUTH succeeded with, else <see langword="null"/>.</param>
/// <param name="AcceptedBytes">The size of the accepted messages as read (before SMTP's line-end and dot encoding).</param>
/// <param name="SessionError">Why no message could be sent (connection, TLS, authentication), else <see langword="null"/>.</param>
/// <param name="Steps">The session's steps up to <c>--quit-after</c>; empty without it.</param>
internal sealed record BatchReport(
    IReadOnlyList<MessageResult> Results,
    TimeSpan Elapsed,
    TlsInfo? Tls,
    string? AuthenticatedAs,
    string? AuthMechanism,
    long AcceptedBytes,
    string? SessionError,
    IReadOnlyList<SessionStep>? Steps = null);

/// <summary>
/// Sends a batch of messages over one SMTP connection: connect with the TLS mode asked for, EHLO (again after
/// STARTTLS; HELO when EHLO is not understood and no STARTTLS is needed), AUTH when asked, then every message through
/// one batch call, so that the transactions overlap (PIPELINING, CHUNKING), and QUIT. Each message's result is handed
/// to the caller as soon as MailPipe knows it. With <c>--quit-after</c> the session ends after the step named.
/// </summary>
/// <remarks>
/// Every message is read (or, when large, opened) before the connection is made, so a file that cannot be read never
/// costs the batch. Should reading a large file still fail in the middle of the batch, MailPipe closes the connection:
/// every message handed over whose result was not known by then is reported with an unknown outcome (exit 7), the
/// others as not sent.
/// </remarks>
internal sealed class BatchSender
{
    private readonly ServerAddress _server;
    private readonly string? _heloName;
    private readonly SmtpTlsMode _tlsMode;
    private readonly AuthSettings? _auth;
    private readonly SmtpSessionOptions _sessionOptions;
    private readonly QuitAfter _quitAfter;
    private readonly List<SessionStep> _steps = [];
    private TlsInfo? _tls;

    /// <summary>Creates a sender.</summary>
    /// <param name="server">Where to connect.</param>
    /// <param name="heloName">The client's name for EHLO/HELO, or <see langword="null"/> for MailPipe's default (<see cref="AsyncSmtpSession.GetDefaultClientDomainAsync"/>).</param>
    /// <param name="tlsMode">How to protect the connection.</param>
    /// <param name="auth">The authentication to run, or <see langword="null"/>.</param>
    /// <param name="sessionOptions">Timeouts, TLS settings and logging of the session.</param>
    /// <param name="quitAfter">Where to end the session early (<c>--quit-after</c>).</param>
    public BatchSender(ServerAddress server, string? heloName, SmtpTlsMode tlsMode, AuthSettings? auth, SmtpSessionOptions sessionOptions, QuitAfter quitAfter = QuitAfter.None)
    {
        _server = server;
        _heloName = heloName;
        _tlsMode = tlsMode;
        _auth = auth;
        _sessionOptions = sessionOptions;
        _quitAfter = quitAfter;
    }

    /// <summary>Sends the batch.</summary>
    /// <param name="messages">The messages, each without an input error.</param>
    /// <param name="onResult">Called with each message's result, in batch order, as soon as it is known.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed (a message in flight is never completed).</param>
    /// <returns>The results, in batch order, and what the connection was.</returns>
    public async Task<BatchReport> SendAsync(IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> onResult, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(onResult);
        _tls = null;
        _steps.Clear();
        var results = new List<MessageResult>(messages.Count);
        void Report(MessageResult result)
        {
            results.Add(result);
            onResult(result);
        }

        var stopwatch = Stopwatch.StartNew();
        var session = new AsyncSmtpSession(_sessionOptions);
        await using (session.ConfigureAwait(false))
        {
            var opened = await OpenAsync(session, cancellationToken).ConfigureAwait(false);
            if (opened is { } why)
            {
                stopwatch.Stop();
                foreach (var message in messages)
                {
                    Report(why.ExitCode == ExitCodes.Success ? QuitBefore(message) : NotSent(message, why.ExitCode, why.Reason) with { SessionFailure = true });
                }

                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                return new BatchReport(results, stopwatch.Elapsed, _tls, null, null, 0, why.ExitCode == ExitCodes.Success ? null : why.Reason, Steps());
            }

            var tls = _tls;
            var mechanism = session.AuthenticatedMechanism;
            long acceptedBytes = 0;
            if (_quitAfter is QuitAfter.Mail or QuitAfter.Rcpt)
            {
                await CheckEnvelopeAsync(session, messages, Report, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                acceptedBytes = await SendBatchAsync(session, messages, Report, cancellationToken).ConfigureAwait(false);
            }

            stopwatch.Stop();
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return new BatchReport(results, stopwatch.Elapsed, tls, mechanism is null ? null : _auth?.UserName, mechanism, acceptedBytes, null, Steps());
        }
    }

    private IReadOnlyList<SessionStep>? Steps() => _quitAfter == QuitAfter.None ? null : [.. _steps];

    private static async Task<long> SendBatchAsync(AsyncSmtpSession session, IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> report, CancellationToken cancellationToken)
    {
        var capabilities = session.Capabilities;
        var handedOver = new List<(OutgoingMessage Message, long Size)>(messages.Count);
        IEnumerable<SmtpMessage> Produce()
        {
            foreach (var message in messages)
            {
                var smtpMessage = message.Content!.ToSmtpMessage(message.Envelope!, capabilities);
                handedOver.Add((message, smtpMessage.Envelope.Size ?? message.Content.Size));
                yield return smtpMessage;
            }
        }

        long acceptedBytes = 0;
        var reported = 0;
        try
        {
            // Each result as soon as MailPipe knows it, the whole batch pipelined.
            await foreach (var sent in session.SendBatchStreamingAsync(Produce(), cancellationToken).ConfigureAwait(false))
            {
                var (message, size) = handedOver[reported];
                var result = ToMessageResult(message, sent);
                if (result.Outcome == MessageOutcome.Accepted)
                {
                    acceptedBytes += size;
                }

                reported++;
                report(result);
            }

            for (var i = reported; i < messages.Count; i++)
            {
                report(NotSent(messages[i], ExitCodes.ConnectionFailed, "not sent: the batch ended before this message"));
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
        {
            // A file failed while its data was being sent: MailPipe closed the connection.
            for (var i = reported; i < messages.Count; i++)
            {
                report(i < handedOver.Count
                    ? Unknown(messages[i], $"reading a file of the batch failed while sending ({ex.Message}); the connection was closed, and whether this message was delivered is unknown")
                    : NotSent(messages[i], ExitCodes.ConnectionFailed, $"not sent: reading a file of the batch failed ({ex.Message}) and the connection was closed"));
            }
        }

        return acceptedBytes;
    }

    /// <summary><c>--quit-after mail|rcpt</c>: MAIL FROM and, for rcpt, every RCPT TO of the first message, then QUIT; nothing is sent.</summary>
    private async Task CheckEnvelopeAsync(AsyncSmtpSession session, IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> report, CancellationToken cancellationToken)
    {
        var first = messages[0];
        MessageResult result;
        try
        {
            var mail = await session.MailFromAsync(first.Envelope!.ReversePath, cancellationToken: cancellationToken).ConfigureAwait(false);
            var recipients = new List<RecipientResult>();
            if (_quitAfter == QuitAfter.Rcpt && mail.IsPositiveCompletion)
            {
                foreach (var recipient in first.Envelope.Recipients)
                {
                    var reply = await session.RcptToAsync(recipient.Address, cancellationToken: cancellationToken).ConfigureAwait(false);
                    recipients.Add(new RecipientResult(recipient.Address, ReplyInfo.From(reply)));
                    if (!session.IsConnected)
                    {
                        break;
                    }
                }
            }

            var refused = !mail.IsPositiveCompletion ? ExitCodes.SenderRefused
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
            result = NotSent(first, ExitCodes.ForError(ex.ErrorCode), Describe(_server, ex));
        }

        report(result);
        foreach (var message in messages.Skip(1))
        {
            report(QuitBefore(message));
        }
    }

    private MessageResult QuitBefore(OutgoingMessage message) =>
        NotSent(message, ExitCodes.Success, $"not sent: --quit-after {_quitAfter.ToString().ToLowerInvariant()}");

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
            _ => (result.Exception is SmtpException ex ? ExitCodes.ForError(ex.ErrorCode) : ExitCodes.ConnectionFailed, MessageOutcome.NotSent),
        };
    }

    /// <summary>Why a session could not be opened, as the CLI says it: the library's message with a hint at the option that helps.</summary>
    /// <param name="server">The server.</param>
    /// <param name="exception">The failure.</param>
    /// <returns>The reason.</returns>
    public static string Describe(ServerAddress server, SmtpException exception)
    {
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(exception);

        // MailPipe's certificate messages end with a hint at its API; the CLI names its own options instead.
        var message = exception.Message
            .Replace(" Set SmtpTlsOptions.AcceptCertificateNameMismatch to accept it.", string.Empty, StringComparison.Ordinal)
            .Replace(" Trust its root with SmtpTlsOptions.TrustedRootCertificates if it is a private CA.", string.Empty, StringComparison.Ordinal);
        return exception.ErrorCode switch
        {
            SmtpErrorCode.StartTlsNotOffered => $"--starttls: {message}",
            SmtpErrorCode.BadCertificateName => $"TLS with {server} failed: {message} (--accept-name-mismatch accepts such a certificate; --tls-name sets the name to check)",
            SmtpErrorCode.BadCertificate => $"TLS with {server} failed: {message} (--ca-file trusts a private certificate authority)",
            SmtpErrorCode.TlsHandshakeFailed or SmtpErrorCode.StartTlsResponseInjection => $"TLS with {server} failed: {message}",
            SmtpErrorCode.AuthenticationError => $"authentication failed: {message}",
            SmtpErrorCode.ConnectionRefused => $"cannot connect to {server}: connection refused",
            SmtpErrorCode.HostNotFound => $"cannot connect to {server}: host not found",
            _ => $"cannot talk to {server}: {message}",
        };
    }

    /// <summary>
    /// Connects, protects the connection, introduces the client and authenticates, step by step so that
    /// <c>--quit-after</c> can stop after any; returns why the connection is unusable, exit code 0 when
    /// <c>--quit-after</c> ended it, or <see langword="null"/> to go on.
    /// </summary>
    private async Task<(int ExitCode, string Reason)?> OpenAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        var stopped = (ExitCodes.Success, "--quit-after");
        try
        {
            var implicitTls = _tlsMode == SmtpTlsMode.Implicit;
            await session.ConnectAsync(_server.Host, _server.Port, waitForGreeting: !implicitTls && _quitAfter != QuitAfter.Connect, cancellationToken).ConfigureAwait(false);
            _steps.Add(new SessionStep("connect", null));
            if (_quitAfter == QuitAfter.Connect)
            {
                await session.DisconnectAsync().ConfigureAwait(false);
                return stopped;
            }

            if (implicitTls)
            {
                await session.ConnectTlsAsync(waitForGreeting: true, cancellationToken).ConfigureAwait(false);
                _tls = ConnectionSettings.Describe(session);
            }

            var greeting = session.Greeting!;
            _steps.Add(new SessionStep("banner", ReplyInfo.From(greeting)));
            if (!greeting.IsPositiveCompletion)
            {
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused the session: {ReplyInfo.From(greeting)}");
            }

            if (_quitAfter == QuitAfter.Banner)
            {
                return stopped;
            }

            var name = _heloName ?? await session.GetDefaultClientDomainAsync(cancellationToken).ConfigureAwait(false);
            if (await GreetAsync(session, name, allowHelo: _tlsMode is SmtpTlsMode.None or SmtpTlsMode.Implicit or SmtpTlsMode.StartTlsWhenAvailable, cancellationToken).ConfigureAwait(false) is { } refused)
            {
                return refused;
            }

            if (_quitAfter == QuitAfter.Ehlo)
            {
                return stopped;
            }

            if (_tlsMode is SmtpTlsMode.StartTlsRequired or SmtpTlsMode.StartTlsWhenAvailable && session.Capabilities.SupportsStartTls)
            {
                var startTls = await session.StartTlsAsync(cancellationToken).ConfigureAwait(false);
                _steps.Add(new SessionStep("starttls", ReplyInfo.From(startTls)));
                _tls = ConnectionSettings.Describe(session);
                if (startTls.Code == 220)
                {
                    if (await GreetAsync(session, name, allowHelo: false, cancellationToken).ConfigureAwait(false) is { } refusedAfterTls)
                    {
                        return refusedAfterTls;
                    }
                }
                else if (_tlsMode == SmtpTlsMode.StartTlsRequired || !session.IsConnected)
                {
                    await session.DisconnectAsync().ConfigureAwait(false); // no fallback to clear text: nothing more, not even QUIT
                    return (ExitCodes.ConnectionFailed, $"--starttls: {_server} refused STARTTLS ({ReplyInfo.From(startTls)}); nothing more was sent");
                }
            }
            else if (_tlsMode == SmtpTlsMode.StartTlsRequired)
            {
                await session.DisconnectAsync().ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, $"--starttls: {_server} does not offer STARTTLS in its EHLO reply; nothing more was sent (--tls-optional sends without TLS then)");
            }

            if (_quitAfter == QuitAfter.Tls)
            {
                return stopped;
            }

            if (_auth is not null && await AuthenticateAsync(session, _auth, cancellationToken).ConfigureAwait(false) is { } authFailure)
            {
                return authFailure;
            }

            return _quitAfter == QuitAfter.Auth ? stopped : null;
        }
        catch (SmtpException ex)
        {
            _tls ??= session.IsEncrypted ? ConnectionSettings.Describe(session) : null;
            return (ExitCodes.ForError(ex.ErrorCode), Describe(_server, ex));
        }
    }

    /// <summary>EHLO, and HELO when EHLO is not understood (RFC 5321 §3.2) and extensions are not needed; returns why the server refused, or <see langword="null"/>.</summary>
    private async Task<(int ExitCode, string Reason)?> GreetAsync(AsyncSmtpSession session, string name, bool allowHelo, CancellationToken cancellationToken)
    {
        var reply = await session.EhloAsync(name, cancellationToken).ConfigureAwait(false);
        _steps.Add(new SessionStep("ehlo", ReplyInfo.From(reply)));
        if (reply.Code is 500 or 502 && session.IsConnected && allowHelo)
        {
            reply = await session.HeloAsync(name, cancellationToken).ConfigureAwait(false);
            _steps.Add(new SessionStep("helo", ReplyInfo.From(reply)));
        }

        return reply.IsPositiveCompletion ? null : (ExitCodes.ConnectionFailed, $"the server at {_server} refused EHLO/HELO {name}: {ReplyInfo.From(reply)}");
    }

    private async Task<(int ExitCode, string Reason)?> AuthenticateAsync(AsyncSmtpSession session, AuthSettings auth, CancellationToken cancellationToken)
    {
        SmtpReply reply;
        try
        {
            reply = await auth.AuthenticateAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            // The clear-text policy, checked before anything is sent (the options' checks should have caught it).
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.AuthenticationFailed, $"authentication failed: {auth}: {ex.Message}");
        }
        catch (ArgumentException ex)
        {
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.UsageOrInput, $"{auth}: {ex.Message}");
        }

        _steps.Add(new SessionStep("auth", ReplyInfo.From(reply)));
        if (reply.Code == 235)
        {
            return null;
        }

        await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
        return (reply.IsServiceClosing ? ExitCodes.ConnectionFailed : ExitCodes.AuthenticationFailed, $"authentication failed: {auth}: {ReplyInfo.From(reply)}");
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

    private static async Task QuietQuitAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        if (!session.IsConnected)
        {
            return;
        }

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
