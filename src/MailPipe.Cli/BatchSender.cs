using System.Diagnostics;

namespace MailPipe.Cli;

/// <summary>
/// Sends a batch of messages over one SMTP connection: connect with the TLS mode asked for, EHLO (again after
/// STARTTLS; HELO when EHLO is not understood and no STARTTLS is needed), AUTH when asked, then every message through
/// one batch call, so that the transactions overlap (PIPELINING, CHUNKING), and QUIT. Each message's result is handed
/// to the caller as soon as MailPipe knows it. With <c>--quit-after</c> the session ends after the step named. When the
/// server ends the session at a limit (or <c>--max-per-connection</c> is reached), the messages it did not take go on
/// a new connection, opened the same way (see BatchSender.Reconnect.cs).
/// </summary>
/// <remarks>
/// Every message is read (or, when large, opened) before the connection is made, so a file that cannot be read never
/// costs the batch. Should reading a large file still fail in the middle of the batch, MailPipe closes the connection:
/// every message handed over whose result was not known by then is reported with an unknown outcome (exit 7), the
/// others as not sent.
/// </remarks>
internal sealed partial class BatchSender
{
    private readonly ServerAddress _server;
    private readonly string? _heloName;
    private readonly SmtpTlsMode _tlsMode;
    private readonly AuthSettings? _auth;
    private readonly SmtpSessionOptions _sessionOptions;
    private readonly QuitAfter _quitAfter;
    private readonly int _reconnects;
    private readonly int _maxPerConnection;
    private readonly List<SessionStep> _steps = [];
    private TlsInfo? _tls;

    /// <summary>With <c>--tls-optional</c>, whether the first connection used TLS: a new connection then requires it (see OpenAsync).</summary>
    private bool _tlsKept;

    /// <summary>Creates a sender.</summary>
    /// <param name="server">Where to connect.</param>
    /// <param name="heloName">The client's name for EHLO/HELO, or <see langword="null"/> for MailPipe's default (<see cref="AsyncSmtpSession.GetDefaultClientDomainAsync"/>).</param>
    /// <param name="tlsMode">How to protect the connection.</param>
    /// <param name="auth">The authentication to run, or <see langword="null"/>.</param>
    /// <param name="sessionOptions">Timeouts, TLS settings and logging of the session.</param>
    /// <param name="quitAfter">Where to end the session early (<c>--quit-after</c>).</param>
    /// <param name="reconnects">How many new connections in a row may decide no message (<c>--reconnect</c>); 0 for none after a session the server ended.</param>
    /// <param name="maxPerConnection">The most messages per connection (<c>--max-per-connection</c>); 0 for no limit.</param>
    public BatchSender(ServerAddress server, string? heloName, SmtpTlsMode tlsMode, AuthSettings? auth, SmtpSessionOptions sessionOptions, QuitAfter quitAfter = QuitAfter.None, int reconnects = DefaultReconnects, int maxPerConnection = 0)
    {
        _reconnects = reconnects;
        _maxPerConnection = maxPerConnection;
        _server = server;
        _heloName = heloName;
        _tlsMode = tlsMode;
        _auth = auth;
        _sessionOptions = sessionOptions;
        _quitAfter = quitAfter;
    }

    /// <summary>Sends the batch, over new connections as long as the server ends sessions at a limit (see <see cref="IsNotTaken"/>).</summary>
    /// <param name="messages">The messages, each without an input error.</param>
    /// <param name="onResult">Called with each message's result, once, in batch order, as soon as it is known for good.</param>
    /// <param name="onWait">Called whenever the batch is about to wait for the server with results reported (the caller flushes its output then).</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed (a message in flight is never completed) and no other is opened.</param>
    /// <param name="onNotice">Called with a line for standard error when a new connection takes the rest, or when none does.</param>
    /// <returns>The results, in batch order, and what the connections were.</returns>
    public async Task<BatchReport> SendAsync(IReadOnlyList<OutgoingMessage> messages, Action<MessageResult> onResult, Action onWait, CancellationToken cancellationToken, Action<string>? onNotice = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(onResult);
        _tls = null;
        _tlsKept = false;
        _steps.Clear();

        // A message a session did not take waits for the next connection; the ones after it, decided already, wait for
        // it too, so that the results come in batch order, each once.
        var results = new List<MessageResult>(messages.Count);
        var settled = new MessageResult?[messages.Count];
        void Settle(int position, MessageResult result)
        {
            settled[position] = result;
            while (results.Count < settled.Length && settled[results.Count] is { } next)
            {
                results.Add(next);
                onResult(next);
            }
        }

        var stopwatch = Stopwatch.StartNew();
        var elapsed = TimeSpan.Zero;
        List<int> pending = [.. Enumerable.Range(0, messages.Count)];
        TlsInfo? tls = null;
        string? mechanism = null;
        long acceptedBytes = 0;
        var connections = 0;
        var fruitless = 0;
        var followUps = new List<FollowUp>(); // accepted messages with recipients refused as too many (452), in batch order
        while (true)
        {
            connections++;
            var batch = pending.ConvertAll(p => messages[p]);
            var held = new List<(int Position, MessageResult? Result)>(); // null: never handed to the session (its result is made only if it stays unsent)
            ConnectionEnd end;
            var session = new AsyncSmtpSession(_sessionOptions);
            await using (session.ConfigureAwait(false))
            {
                _tls = null;
                (int ExitCode, string Reason)? opened;
                try
                {
                    opened = await OpenAsync(session, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    opened = (ExitCodes.ConnectionFailed, $"not sent: {Interrupted} before the connection was ready");
                }

                if (opened is { } why && connections == 1)
                {
                    stopwatch.Stop();
                    for (var i = 0; i < batch.Count; i++)
                    {
                        Settle(pending[i], why.ExitCode == ExitCodes.Success ? QuitBefore(batch[i]) : NotSent(batch[i], why.ExitCode, why.Reason) with { SessionFailure = true });
                    }

                    var authenticated = session.AuthenticatedMechanism; // --quit-after auth: the session did authenticate
                    await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
                    return new BatchReport(results, stopwatch.Elapsed, _tls, authenticated is null ? null : _auth?.UserName, authenticated, 0, why.ExitCode == ExitCodes.Success ? null : why.Reason, Steps(), Connections: 1);
                }

                if (opened is { } failed)
                {
                    // A new connection that could not be used: its messages wait for the next one, or are reported with this reason.
                    var reason = cancellationToken.IsCancellationRequested ? failed.Reason : $"not sent: connection {connections} to {_server} could not be used: {failed.Reason}";
                    held.AddRange(pending.Select(p => (p, (MessageResult?)NotSent(messages[p], failed.ExitCode, reason))));
                    end = new ConnectionEnd(0, 0, Planned: false, $"connection {connections} could not be used ({failed.Reason})", AuthRefused: failed.ExitCode == ExitCodes.AuthenticationFailed);
                }
                else
                {
                    if (connections == 1)
                    {
                        // The summary reports the first connection's TLS: every later one has it too (_tlsKept), or the first had none.
                        tls = _tls;
                        _tlsKept = _tlsMode == SmtpTlsMode.StartTlsWhenAvailable && _tls is not null;
                    }

                    mechanism ??= session.AuthenticatedMechanism;
                    if (_quitAfter is QuitAfter.Mail or QuitAfter.Rcpt)
                    {
                        var position = 0;
                        await CheckEnvelopeAsync(session, messages, result => Settle(position++, result), cancellationToken).ConfigureAwait(false);
                        end = new ConnectionEnd(0, 0, Planned: false, null);
                    }
                    else
                    {
                        end = await SendBatchAsync(
                            session,
                            batch,
                            (i, result, notTaken) =>
                            {
                                if (notTaken)
                                {
                                    held.Add((pending[i], result));
                                }
                                else if (NeedsFollowUp(result!))
                                {
                                    followUps.Add(new FollowUp(pending[i], batch[i], result!)); // settled once its follow-ups are done
                                }
                                else
                                {
                                    Settle(pending[i], result!); // null only for a message never handed over, which is not taken
                                }
                            },
                            onWait,
                            decidedSoFar => MayReconnect(decidedSoFar, connections, fruitless),
                            cancellationToken).ConfigureAwait(false);
                        acceptedBytes += end.AcceptedBytes;
                        if (followUps.Count > 0 && !cancellationToken.IsCancellationRequested)
                        {
                            // Follow-ups, in batch order, on this session (the batch's transactions are all decided by now).
                            followUps.Sort(static (a, b) => a.Position.CompareTo(b.Position));
                            var decided = await RunFollowUpsAsync(session, followUps, Settle, cancellationToken).ConfigureAwait(false);
                            end = end with { Decided = end.Decided + decided };
                        }
                    }

                    elapsed = stopwatch.Elapsed;
                }

                await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            }

            var reconnect = (held.Count > 0 || followUps.Count > 0) && !cancellationToken.IsCancellationRequested && ShouldReconnect(end, connections, ref fruitless);
            if (!reconnect)
            {
                if (held.Count > 0 && connections > 1 && !cancellationToken.IsCancellationRequested)
                {
                    var stop = end.AuthRefused ? "no new connection tries the credentials again"
                        : fruitless > 0 ? $"{fruitless} new connection{(fruitless == 1 ? string.Empty : "s")} in a row decided no message (--reconnect {_reconnects})" : "--reconnect 0";
                    onNotice?.Invoke($"{held.Count} message{(held.Count == 1 ? string.Empty : "s")} left after {end.Why ?? "the session ended"}; {stop}: they are reported as they stand");
                }

                foreach (var (position, result) in held)
                {
                    Settle(position, result ?? NotSent(messages[position], ExitCodes.ConnectionFailed, "not sent: the batch ended before this message"));
                }

                foreach (var followUp in followUps)
                {
                    Settle(followUp.Position, Unfollowed(followUp, cancellationToken.IsCancellationRequested ? Interrupted : end.Why ?? "the session ended"));
                }

                return new BatchReport(results, elapsed, tls, mechanism is null ? null : _auth?.UserName, mechanism, acceptedBytes, null, Steps(), connections);
            }

            if (!end.Planned && held.Count > 0)
            {
                // Not at each --max-per-connection: that is what was asked for (a line per connection would bury the others).
                onNotice?.Invoke($"{held.Count} message{(held.Count == 1 ? string.Empty : "s")} not taken after {end.Why ?? "the session ended"}: sending {(held.Count == 1 ? "it" : "them")} on connection {connections + 1}");
            }

            if (followUps.Count > 0)
            {
                onNotice?.Invoke($"{followUps.Count} message{(followUps.Count == 1 ? string.Empty : "s")} with recipients refused as too many (452) left after {end.Why ?? "the session ended"}: sending {(followUps.Count == 1 ? "its follow-up" : "their follow-ups")} on connection {connections + 1}");
            }

            pending = held.ConvertAll(h => h.Position);
        }
    }

    /// <summary>Why the rest of an interrupted batch was not sent.</summary>
    internal const string Interrupted = "the batch was interrupted (Ctrl+C or SIGTERM)";

    private IReadOnlyList<SessionStep>? Steps() => _quitAfter == QuitAfter.None ? null : [.. _steps];

    /// <summary>
    /// One connection's batch: every message's result through <paramref name="report"/> (by position in
    /// <paramref name="messages"/>, with whether the session left it untaken: <see cref="IsNotTaken"/>, or never handed
    /// over), and how it ended. No more messages are handed over after <c>--max-per-connection</c>, or once a MAIL was
    /// refused at a session limit when a new connection is to take the rest (<paramref name="mayReconnect"/>, given the
    /// messages decided so far); when none is (<c>--reconnect 0</c>, a first connection that decided nothing), every
    /// later message meets the refusal as before, and is reported refused with it.
    /// </summary>
    private async Task<ConnectionEnd> SendBatchAsync(AsyncSmtpSession session, List<OutgoingMessage> messages, Action<int, MessageResult?, bool> report, Action onWait, Func<int, bool> mayReconnect, CancellationToken cancellationToken)
    {
        var source = new Source(messages, session.Capabilities, _maxPerConnection);
        long acceptedBytes = 0;
        var reported = 0;
        var decided = 0;
        var notTaken = 0;
        string? why = null;
        SmtpReply? closing = null;
        try
        {
            // Each result as soon as MailPipe knows it, the whole batch pipelined (the source is always ready, so the
            // session takes the messages as fast as it writes them; it stops taking them at a session limit, and
            // after a lost connection). The results that one read of the server's replies completes come together;
            // the caller's output is flushed only before a real wait, so that a line is never held back while the
            // batch waits, and a burst costs one write.
            var results = session.SendBatchStreamingAsync(source, cancellationToken).GetAsyncEnumerator(cancellationToken);
            await using var resultsScope = results.ConfigureAwait(false);
            try
            {
                while (true)
                {
                    var next = results.MoveNextAsync();
                    if (!next.IsCompleted && reported > 0)
                    {
                        onWait();
                    }

                    if (!await next.ConfigureAwait(false))
                    {
                        break;
                    }

                    var sent = results.Current;
                    var message = messages[reported];
                    var size = message.Content!.Size; // the message as given (its SIZE counts line ends as sent)
                    var result = ToMessageResult(message, sent);
                    var untaken = IsNotTaken(sent);
                    if (result.Outcome == MessageOutcome.Accepted)
                    {
                        acceptedBytes += size;
                    }

                    decided += IsDecided(sent, untaken) ? 1 : 0;
                    notTaken += untaken ? 1 : 0;
                    if (untaken && sent.MailReply is { } mail && IsSessionLimitReply(mail))
                    {
                        if (mayReconnect(decided))
                        {
                            source.Stop();
                        }

                        why ??= mail.Code == 421 ? $"{_server} closed the session ({ReplyInfo.From(mail)})" : $"{_server} refused MAIL at a limit of the session ({ReplyInfo.From(mail)})";
                    }

                    closing ??= untaken && sent.Exception is SmtpException { Reply: { } reply } ? reply : null; // 421, or Exim's 554 to a RSET past its nonmail limit

                    reported++;
                    report(reported - 1, result, untaken);
                    source.Reported();
                }
            }
            finally
            {
                source.Release(); // a session waiting for the next message (without PIPELINING) must not wait for a reader that left
            }

            var stopped = reported < messages.Count;
            if (!session.IsConnected && (notTaken > 0 || stopped))
            {
                why ??= $"{_server} ended the session after {decided} message{(decided == 1 ? string.Empty : "s")}{(closing is null ? " (the connection closed)" : $" ({ReplyInfo.From(closing)})")}";
            }

            // Never handed over: no result made here (at --max-per-connection L, n messages would cost n²/L of them).
            for (var i = reported; i < messages.Count; i++)
            {
                report(i, null, true);
            }

            var planned = _maxPerConnection > 0 && stopped && notTaken == 0 && why is null && session.IsConnected;
            return new ConnectionEnd(acceptedBytes, decided, planned, planned ? $"--max-per-connection {_maxPerConnection}" : why);
        }
        catch (OperationCanceledException ex) when (cancellationToken.IsCancellationRequested)
        {
            // Interrupted (Ctrl+C, SIGTERM): MailPipe closed the connection; its results say which messages it had
            // taken and what became of them (Unknown where the end of data was written); the rest were not sent.
            var known = (ex as SmtpBatchCanceledException)?.Results;
            for (var i = reported; i < messages.Count; i++)
            {
                if (known is not null && i < known.Count && known[i].Outcome != SmtpSendOutcome.NotSent)
                {
                    var result = ToMessageResult(messages[i], known[i]);
                    acceptedBytes += result.Outcome == MessageOutcome.Accepted ? messages[i].Content!.Size : 0;
                    report(i, result, false);
                }
                else
                {
                    report(i, known is null && i < source.Count
                        ? Unknown(messages[i], Interrupted + "; whether this message was delivered is unknown")
                        : NotSent(messages[i], ExitCodes.ConnectionFailed, $"not sent: {Interrupted}"), false);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
        {
            // A file failed while its data was being sent: MailPipe closed the connection.
            for (var i = reported; i < messages.Count; i++)
            {
                report(i, i < source.Count
                    ? Unknown(messages[i], $"reading a file of the batch failed while sending ({ex.Message}); the connection was closed, and whether this message was delivered is unknown")
                    : NotSent(messages[i], ExitCodes.ConnectionFailed, $"not sent: reading a file of the batch failed ({ex.Message}) and the connection was closed"), false);
            }
        }

        return new ConnectionEnd(acceptedBytes, decided, Planned: false, null);
    }

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
