namespace MailPipe.Cli;

/// <content>
/// The rule for going on over a new connection when a server ended a session, or stopped taking messages on it, part
/// of the way through a batch.
/// </content>
/// <remarks>
/// <para>
/// Servers limit what one session may carry: OpenSMTPD refuses MAIL with <c>452 4.5.3</c> after 100 messages, Exim
/// ends the session with a 421 after <c>smtp_accept_max_per_connection</c> (1000) and after
/// <c>smtp_accept_max_nonmail</c>, and any server may close the connection or send 421 at any point. What the
/// session did not take is sent again on a new connection (opened as the first was: TLS, EHLO, AUTH): a message whose
/// end of data was never written (<see cref="SmtpSendOutcome.NotSent"/> because the connection ended, or never handed
/// to the session), or whose MAIL was refused by a session-limit reply (<see cref="IsSessionLimitReply"/>). Nothing of
/// such a message was taken, so it cannot be delivered twice or in part. Never a message that was accepted, refused for
/// its own sake (a 5yz, a 4yz to RCPT or DATA, a 421 after MAIL was accepted) or whose outcome is unknown.
/// </para>
/// <para>
/// As the pool decides (<c>SmtpSender.IsDroppedAtSessionLimit</c>: a connection ended after the server decided other
/// transactions on it), a limit per session is told from a server that refuses service by the work done first: a new
/// connection follows a session that decided at least one message (accepted it, or refused it for its own sake). The
/// first connection deciding none (a 421 to the first MAIL: a server shutting down) is reported as it was, on one
/// connection. A new connection that decides none counts against <c>--reconnect</c>: after that many in a row, the
/// rest is reported as it stands.
/// </para>
/// </remarks>
internal sealed partial class BatchSender
{
    /// <summary>The default of <c>--reconnect</c>: how many new connections in a row may decide no message before the rest is reported.</summary>
    /// <remarks>
    /// Two: the first new connection may meet the server still counting the session it has just ended (a limit of
    /// connections per client that the old process holds until it exits), and one more covers that; a second new
    /// connection that decides nothing says the server refuses the sender for now, and more at once (the CLI does not
    /// wait between connections) would only add load. A script can send the messages reported not sent later.
    /// </remarks>
    public const int DefaultReconnects = 2;

    /// <summary>
    /// Whether a MAIL reply refuses the transaction at a limit of the session, not for the message's sake: a 421 (the
    /// server closing the channel, RFC 5321 §3.8), or a 4yz with the enhanced status code 4.5.3 (RFC 3463: too many
    /// recipients; at MAIL, before any recipient of this transaction was given, a count over the session: OpenSMTPD's
    /// <c>452 4.5.3 Too many recipients: Too many messages sent</c>). Other 4yz replies (<c>451 4.3.0</c>, a rate limit
    /// such as Postfix's <c>450 4.7.1 too much mail</c>) are not: a new connection at once would meet them again.
    /// </summary>
    /// <param name="mail">The reply to MAIL FROM.</param>
    /// <returns>Whether a new connection may take the message.</returns>
    internal static bool IsSessionLimitReply(SmtpReply mail) =>
        mail.Code == 421 || (mail.IsTransientNegative && mail.EnhancedStatusCode is { Class: 4, Subject: 5, Detail: 3 });

    /// <summary>Whether a session left a message untaken, so that a new connection may send it (see the remarks of this file).</summary>
    /// <param name="result">The message's result on that session.</param>
    /// <returns>
    /// True for NotSent because the connection ended (closed, reset, 421), for MAIL refused by a
    /// <see cref="IsSessionLimitReply">session-limit reply</see>, and for a 421 to DATA or to every recipient given (the
    /// server closing the channel before a byte of the message: as the pool's retry decides). Not for a 421 to the end
    /// of data: the message was sent whole, and the CLI leaves that one to the user.
    /// </returns>
    internal static bool IsNotTaken(SmtpSendResult result) => result.Outcome switch
    {
        SmtpSendOutcome.NotSent => result.Exception is SmtpException { ErrorCode: SmtpErrorCode.ConnectionClosed or SmtpErrorCode.ServiceNotAvailable or SmtpErrorCode.SystemError },
        SmtpSendOutcome.Refused => (result.MailReply is { } mail && IsSessionLimitReply(mail))
            || (result.FinalReply is null && result.DataReply is { Code: 421 })
            || (result.FinalReply is null && result.DataReply is null && result.Recipients.Count > 0
                && result.Recipients.All(static r => r.Reply is null || r.Reply.Code == 421) && result.Recipients.Any(static r => r.Reply?.Code == 421)),
        _ => false,
    };

    /// <summary>
    /// Whether a message was refused with <c>421</c> to its end of data (DATA's final reply, the last BDAT's): the server
    /// is closing the transmission channel and did not accept it (RFC 5321 §3.8, §4.2.2), so, with <c>--reconnect</c>
    /// above 0, it is sent again on the next connection, once, as the pool's retry on a fresh connection
    /// (<c>SmtpSender</c>: a refusal with 421 is sent again once). Never a message whose end of data got no reply: its
    /// outcome is unknown (the server may have taken it), and it stays so.
    /// </summary>
    /// <param name="result">The message's result on that session.</param>
    /// <returns>Whether a new connection may take the message, if it was not sent again already.</returns>
    internal static bool IsClosedAtEndOfData(SmtpSendResult result) =>
        result is { Outcome: SmtpSendOutcome.Refused, FinalReply.Code: 421 };

    /// <summary>Whether a result decides its message on the server's part: accepted, or refused for its own sake (not by a 421, not at a session limit).</summary>
    private static bool IsDecided(SmtpSendResult result, bool notTaken) =>
        result.Outcome == SmtpSendOutcome.Accepted || (result.Outcome == SmtpSendOutcome.Refused && !notTaken && !IsServiceClosing(result));

    /// <summary>The summary's error when the last connection could not be used and messages (or follow-ups) were left: why they were not sent.</summary>
    /// <param name="unusable">Why the last connection could not be used, or <see langword="null"/> when it could.</param>
    /// <param name="held">The messages left, reported not sent.</param>
    /// <param name="followUps">The follow-ups left (their messages reported with the recipients refused as too many).</param>
    /// <returns>The error, or <see langword="null"/>.</returns>
    private static string? LastConnectionError(string? unusable, int held, int followUps)
    {
        if (unusable is null || held + followUps == 0)
        {
            return null;
        }

        var messages = held == 0 ? null : $"{held} message{(held == 1 ? " was" : "s were")} not sent";
        var recipients = followUps == 0 ? null : $"{followUps} follow-up transaction{(followUps == 1 ? " was" : "s were")} not sent";
        return $"{unusable}; {string.Join(" and ", new[] { messages, recipients }.OfType<string>())}";
    }

    /// <summary>How one connection's batch ended.</summary>
    /// <param name="AcceptedBytes">The size of the messages it accepted.</param>
    /// <param name="Decided">How many messages it decided (<see cref="IsDecided"/>).</param>
    /// <param name="Planned">Whether it ended at <c>--max-per-connection</c>, with nothing left undecided by the server.</param>
    /// <param name="Why">What ended it early, for the notice, or <see langword="null"/>.</param>
    /// <param name="AuthRefused">Whether it could not be used because authentication failed: no new connection tries the credentials again (an account lock-out counts each failure).</param>
    private sealed record ConnectionEnd(long AcceptedBytes, int Decided, bool Planned, string? Why, bool AuthRefused = false)
    {
        /// <summary>How many messages of the batch the session took (each a transaction against <c>--max-per-connection</c>).</summary>
        public int Taken { get; init; }

        /// <summary>Whether a message or a follow-up was refused with 421 at its end of data and waits for the next connection (<see cref="IsClosedAtEndOfData"/>).</summary>
        public bool ClosedAtEndOfData { get; init; }
    }

    /// <summary>Whether the messages a connection did not take go on a new one; counts the new connections in a row that decided nothing.</summary>
    /// <param name="end">How the connection ended.</param>
    /// <param name="number">Its number, from 1.</param>
    /// <param name="fruitless">New connections in a row that decided no message, updated.</param>
    /// <returns>Whether to open another.</returns>
    private bool ShouldReconnect(ConnectionEnd end, int number, ref int fruitless)
    {
        if (end.Decided > 0 || end.Planned)
        {
            fruitless = 0;
            return end.Planned || _reconnects > 0;
        }

        if (number == 1 || end.AuthRefused)
        {
            // No work done: a server refusing service, not a limit per session; or credentials refused. But a message
            // refused with 421 at its end of data goes on a new connection once, as the pool's retry does.
            return number == 1 && end.ClosedAtEndOfData && _reconnects > 0;
        }

        // A message or follow-up refused with 421 at its end of data for the first time goes on the next connection on any
        // connection, as on the first (each is sent again once at most, so this ends): it still counts as deciding nothing.
        fruitless++;
        return fruitless < _reconnects || (end.ClosedAtEndOfData && _reconnects > 0);
    }

    /// <summary>
    /// Whether a new connection would follow a session that ends now with <paramref name="decided"/> messages decided (as
    /// <see cref="ShouldReconnect"/> would answer, without counting): until then a session refused at its limit stops
    /// taking messages; otherwise it goes on, and every later message is refused at the limit, as with one connection.
    /// </summary>
    /// <param name="decided">The messages the session decided so far.</param>
    /// <param name="number">The connection's number, from 1.</param>
    /// <param name="fruitless">New connections in a row that decided no message, before this one.</param>
    /// <returns>Whether the rest would go on a new connection.</returns>
    private bool MayReconnect(int decided, int number, int fruitless) =>
        decided > 0 ? _reconnects > 0 : number > 1 && fruitless + 1 < _reconnects;

    /// <summary>
    /// A connection's messages as the session takes them, each made an <see cref="SmtpMessage"/> when taken. It ends
    /// after <c>--max-per-connection</c>, or once <see cref="Stop"/> was called (a MAIL refused at a session limit: the
    /// rest would only be refused too, one MAIL each, and waits for a new connection). With PIPELINING it is always
    /// ready (no async iterator's state machine, as the session's own list source), so that the session writes as far
    /// ahead as with a list, and a few messages in flight may still meet the limit. Without PIPELINING the session waits
    /// for each reply anyway: the next message is then handed over only once the caller has seen every result so far
    /// (<see cref="Reported"/>), so that a limit stops the batch at once (OpenSMTPD refused each of the rest, on every
    /// connection: a batch of n cost about n²/200 refusals).
    /// </summary>
    private sealed class Source(List<OutgoingMessage> messages, SmtpCapabilities capabilities, int max) : IAsyncEnumerable<SmtpMessage>, IAsyncEnumerator<SmtpMessage>
    {
        private readonly bool _lockstep = !capabilities.SupportsPipelining;
        private readonly Lock _gate = new();
        private int _count;
        private int _reported;
        private int _stopped;
        private SmtpMessage? _current;
        private TaskCompletionSource<bool>? _waiting;
        private CancellationTokenRegistration _cancellation;

        /// <summary>How many messages the session took (read on the caller's flow while the session takes more).</summary>
        public int Count => Volatile.Read(ref _count);

        public SmtpMessage Current => _current!;

        /// <summary>Takes no more messages.</summary>
        public void Stop() => Volatile.Write(ref _stopped, 1);

        /// <summary>The caller has seen one more result (after <see cref="Stop"/>, when that result called for it).</summary>
        public void Reported()
        {
            TaskCompletionSource<bool>? waiting;
            bool more;
            lock (_gate)
            {
                _reported++;
                waiting = _waiting;
                if (waiting is null || _reported < _count)
                {
                    return;
                }

                _waiting = null;
                try
                {
                    more = TakeNext();
                }
                catch (Exception ex)
                {
                    // The session gets it as its sequence's failure, as when it takes a message itself.
                    waiting.TrySetException(ex);
                    return;
                }
            }

            waiting.TrySetResult(more);
        }

        /// <summary>Takes no more messages and ends a wait for the caller's results: the caller stopped reading them, or the session was cancelled.</summary>
        public void Release()
        {
            TaskCompletionSource<bool>? waiting;
            lock (_gate)
            {
                Volatile.Write(ref _stopped, 1);
                waiting = _waiting;
                _waiting = null;
            }

            waiting?.TrySetResult(false);
        }

        public IAsyncEnumerator<SmtpMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default)
        {
            _cancellation = cancellationToken.Register(static source => ((Source)source!).Release(), this);
            return this;
        }

        public ValueTask<bool> MoveNextAsync()
        {
            lock (_gate)
            {
                if (!_lockstep || _reported >= _count || Volatile.Read(ref _stopped) != 0)
                {
                    return new(TakeNext());
                }

                _waiting = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                return new(_waiting.Task);
            }
        }

        public ValueTask DisposeAsync() => _cancellation.DisposeAsync();

        private bool TakeNext()
        {
            var next = _count;
            if (next >= messages.Count || (max > 0 && next >= max) || Volatile.Read(ref _stopped) != 0)
            {
                return false;
            }

            var message = messages[next];
            _current = message.Content!.ToSmtpMessage(message.Envelope!, capabilities);
            Volatile.Write(ref _count, next + 1);
            return true;
        }
    }
}
