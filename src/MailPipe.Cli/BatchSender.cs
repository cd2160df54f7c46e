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
        var resent = new HashSet<int>(); // positions refused with 421 at their end of data once: sent again once, never twice
        string? unusable = null; // why the last connection could not be used, for the summary's error
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
                    unusable = $"connection {connections} to {_server} could not be used: {failed.Reason}";
                    elapsed = stopwatch.Elapsed; // the summary's time includes the connection that failed
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
                    unusable = null;
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
                                    if (result is { FinalReply.Code: 421 })
                                    {
                                        resent.Add(pending[i]); // its next refusal with 421 at the end of data stands
                                    }
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
                            i => !resent.Contains(pending[i]),
                            cancellationToken).ConfigureAwait(false);
                        acceptedBytes += end.AcceptedBytes;
                        if (followUps.Count > 0 && !cancellationToken.IsCancellationRequested)
                        {
                            end = await FollowUpAsync(session, followUps, end, Settle, cancellationToken).ConfigureAwait(false);
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

                var error = cancellationToken.IsCancellationRequested ? null : LastConnectionError(unusable, held.Count, followUps.Count);
                return new BatchReport(results, elapsed, tls, mechanism is null ? null : _auth?.UserName, mechanism, acceptedBytes, error, Steps(), connections);
            }

            if (!end.Planned && held.Count > 0)
            {
                // Not at each --max-per-connection: that is what was asked for (a line per connection would bury the others).
                onNotice?.Invoke($"{held.Count} message{(held.Count == 1 ? string.Empty : "s")} not taken after {end.Why ?? "the session ended"}: sending {(held.Count == 1 ? "it" : "them")} on connection {connections + 1}");
            }

            if (followUps.Count > 0 && !end.Planned)
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
    /// later message meets the refusal as before, and is reported refused with it. A message refused with 421 at its
    /// end of data is left untaken when <paramref name="mayResend"/> says so (by position: not yet sent again).
    /// </summary>
    private async Task<ConnectionEnd> SendBatchAsync(AsyncSmtpSession session, List<OutgoingMessage> messages, Action<int, MessageResult?, bool> report, Action onWait, Func<int, bool> mayReconnect, Func<int, bool> mayResend, CancellationToken cancellationToken)
    {
        var source = new Source(messages, session.Capabilities, _maxPerConnection);
        long acceptedBytes = 0;
        var reported = 0;
        var decided = 0;
        var notTaken = 0;
        string? why = null;
        SmtpReply? closing = null;
        var closedAtEndOfData = false;
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
                    var resend = _reconnects > 0 && IsClosedAtEndOfData(sent) && mayResend(reported); // once: see IsClosedAtEndOfData
                    var untaken = resend || IsNotTaken(sent);
                    closedAtEndOfData |= resend;
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

                    closing ??= untaken && sent.Exception is SmtpException { Reply: { } reply } ? reply : resend ? sent.FinalReply : null; // 421, or Exim's 554 to a RSET past its nonmail limit

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
            return new ConnectionEnd(acceptedBytes, decided, planned, planned ? $"--max-per-connection {_maxPerConnection}" : why) { Taken = source.Count, ClosedAtEndOfData = closedAtEndOfData };
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
}
