namespace MailPipe.Cli;

/// <content>
/// Follow-up transactions for recipients refused with <c>452</c> (RFC 5321 §4.5.3.1.10, §3.3: "too many recipients"):
/// a server with a per-transaction recipient limit (Sendmail's MaxRecipientsPerMessage, Postfix's
/// smtpd_recipient_limit, <c>mailpipe serve --max-recipients</c>) refuses the recipients past it, and the client is to
/// send the message to them in a later transaction.
/// </content>
/// <remarks>
/// After a connection's pipelined batch, on the same session, each accepted message with such recipients is sent again,
/// the same content and MAIL parameters, to exactly those recipients, as long as each follow-up gets at least one more
/// of them accepted. A recipient accepted or refused for another reason is never given again. A session that ended
/// first leaves them to the next connection, if there is one; otherwise the message is reported as it stands. Each
/// follow-up is a transaction of its own, counted against <c>--max-per-connection</c> after the batch's messages: at
/// the limit the rest waits for the next connection. One refused with 421 at its end of data goes on the next
/// connection once, as a message does (<see cref="IsClosedAtEndOfData"/>).
/// </remarks>
internal sealed partial class BatchSender
{
    /// <summary>
    /// Whether a reply to RCPT refuses the recipient as one too many for the transaction: a <c>452</c> (RFC 5321's reply
    /// for it) without an enhanced status code, or with <c>4.5.3</c> (RFC 3463). A 452 with another enhanced code
    /// (<c>4.2.2</c> mailbox full, <c>4.3.1</c> system storage) is not: another transaction at once would not help.
    /// </summary>
    /// <param name="reply">The reply, or <see langword="null"/>.</param>
    /// <returns>Whether a follow-up transaction may take the recipient.</returns>
    internal static bool IsTooManyRecipients(ReplyInfo? reply) =>
        reply is { Code: 452 } && (reply.EnhancedStatus is null || reply.EnhancedStatus.EndsWith(".5.3", StringComparison.Ordinal));

    /// <summary>Whether a result is a message accepted with recipients refused as too many (<see cref="IsTooManyRecipients"/>).</summary>
    private static bool NeedsFollowUp(MessageResult result) =>
        result.Outcome == MessageOutcome.Accepted && result.Recipients.Any(static r => IsTooManyRecipients(r.Reply));

    /// <summary>
    /// The follow-ups after a connection's batch, in batch order, with what room <c>--max-per-connection</c> leaves;
    /// returns how the connection ended: with the follow-ups decided counted, and planned when the limit stopped them.
    /// </summary>
    private async Task<ConnectionEnd> FollowUpAsync(AsyncSmtpSession session, List<FollowUp> followUps, ConnectionEnd end, Action<int, MessageResult> settle, CancellationToken cancellationToken)
    {
        followUps.Sort(static (a, b) => a.Position.CompareTo(b.Position));
        var room = _maxPerConnection > 0 ? Math.Max(0, _maxPerConnection - end.Taken) : int.MaxValue;
        var (decided, atLimit, closedAtEnd) = await RunFollowUpsAsync(session, followUps, room, _reconnects > 0, settle, cancellationToken).ConfigureAwait(false);
        end = end with { Decided = end.Decided + decided, ClosedAtEndOfData = end.ClosedAtEndOfData || closedAtEnd };
        return atLimit && (end.Planned || end.Why is null) && session.IsConnected
            ? end with { Planned = true, Why = $"--max-per-connection {_maxPerConnection}" }
            : end;
    }

    /// <summary>
    /// Sends the follow-ups on <paramref name="session"/>, in batch order, each message until its recipients refused as
    /// too many are all accepted or a transaction accepts none of them; a finished message is handed to
    /// <paramref name="settle"/> and leaves <paramref name="followUps"/>. Those the session could not take (it ended, or
    /// refused MAIL at a limit of the session, or <paramref name="room"/> transactions were sent) stay there for the next
    /// connection, and so does one refused with 421 at its end of data for the first time when <paramref name="resend"/>.
    /// </summary>
    /// <returns>How many follow-up transactions the server decided (for <c>--reconnect</c>'s count of connections that decided nothing), whether <paramref name="room"/> ran out with follow-ups left, and whether one was refused with 421 at its end of data and waits to be sent again.</returns>
    private static async Task<(int Decided, bool AtLimit, bool ClosedAtEnd)> RunFollowUpsAsync(AsyncSmtpSession session, List<FollowUp> followUps, int room, bool resend, Action<int, MessageResult> settle, CancellationToken cancellationToken)
    {
        var decided = 0;
        while (followUps.Count > 0 && session.IsConnected && !cancellationToken.IsCancellationRequested)
        {
            if (room-- <= 0)
            {
                return (decided, true, false);
            }

            var followUp = followUps[0];
            var targets = followUp.SoFar.Recipients.Where(static r => IsTooManyRecipients(r.Reply)).Select(static r => r.Address).ToHashSet(StringComparer.Ordinal);
            var envelope = followUp.Message.Envelope!;
            var carried = envelope.WithRecipients([.. envelope.Recipients.Where(r => targets.Contains(r.Address))]);
            SmtpSendResult sent;
            try
            {
                sent = await session.SendAsync(followUp.Message.Content!.ToSmtpMessage(carried, session.Capabilities), cancellationToken).ConfigureAwait(false);
            }
            catch (SmtpOutcomeUnknownException ex) when (ex is { Result: var unknown })
            {
                sent = unknown;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                break; // nothing of the follow-up was delivered: reported as it stands
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException or ObjectDisposedException)
            {
                // A file failed while its data was being sent: MailPipe closed the connection.
                followUp.SoFar = followUp.SoFar with { ExitCode = ExitCodes.OutcomeUnknown, Error = Join(followUp.SoFar.Error, $"follow-up transaction {followUp.SoFar.Transactions + 1}: reading the file failed while sending ({ex.Message}); whether its {targets.Count} recipient{(targets.Count == 1 ? string.Empty : "s")} got the message is unknown") };
                followUps.RemoveAt(0);
                settle(followUp.Position, followUp.SoFar);
                continue;
            }

            if (IsNotTaken(sent))
            {
                break; // the session ended, or refused MAIL at its limit, first: the next connection, if any, takes it
            }

            if (resend && followUp.ClosedAtEnd is null && IsClosedAtEndOfData(sent))
            {
                followUp.ClosedAtEnd = sent; // its result, should no connection follow (see Unfollowed)
                return (decided, false, true);
            }

            followUp.ClosedAtEnd = null;

            decided++;
            if (!Merge(followUp, sent))
            {
                followUps.RemoveAt(0);
                settle(followUp.Position, followUp.SoFar);
            }
        }

        return (decided, false, false);
    }

    /// <summary>Puts a follow-up's replies on its recipients' lines; returns whether another follow-up is to be sent.</summary>
    private static bool Merge(FollowUp followUp, SmtpSendResult sent)
    {
        var result = followUp.SoFar;
        var number = result.Transactions + 1;
        var replies = new Dictionary<string, ReplyInfo?>(StringComparer.Ordinal);
        var refusal = sent.MailReply is { IsPositiveCompletion: false } mail ? mail
            : sent.DataReply is { } data && data.Code != 354 && !data.IsPositiveCompletion ? data
            : sent.FinalReply is { IsPositiveCompletion: false } final ? final : null;
        foreach (var recipient in sent.Recipients)
        {
            // A recipient refused keeps its own reply; one accepted at RCPT in a transaction that failed gets the refusal
            // of the transaction (MAIL, DATA, end of data), or no reply when its outcome is unknown or it was not sent.
            var own = recipient.Reply is null ? null : ReplyInfo.From(recipient.Reply);
            replies[recipient.Recipient.Address] = sent.Outcome switch
            {
                SmtpSendOutcome.Accepted => own,
                SmtpSendOutcome.Refused => own is { IsPositive: false } || refusal is null ? own : ReplyInfo.From(refusal),
                _ => own is { IsPositive: false } ? own : null,
            };
        }

        var accepted = sent.Outcome == SmtpSendOutcome.Accepted ? sent.Recipients.Count(static r => r.Accepted) : 0;
        var recipients = result.Recipients.Select(r => replies.TryGetValue(r.Address, out var reply) ? r with { Reply = reply } : r).ToList();
        var count = replies.Count == 1 ? "1 recipient" : $"{replies.Count} recipients";
        var error = sent.Outcome switch
        {
            SmtpSendOutcome.Accepted => result.Error,
            SmtpSendOutcome.Refused => Join(result.Error, $"follow-up transaction {number} for {count} refused ({(refusal is null ? "every recipient refused" : ReplyInfo.From(refusal).ToString())})"),
            SmtpSendOutcome.Unknown => Join(result.Error, $"follow-up transaction {number} for {count}: outcome unknown ({sent.Exception?.Message ?? "no reply to the end of data"}); whether they got the message is unknown"),
            _ => Join(result.Error, $"follow-up transaction {number} for {count} not sent ({sent.Exception?.Message ?? "no reason given"})"),
        };
        followUp.SoFar = result with
        {
            Recipients = recipients,
            Transactions = number,
            Error = error,
            ExitCode = sent.Outcome == SmtpSendOutcome.Unknown ? ExitCodes.OutcomeUnknown : result.ExitCode,
        };
        return accepted > 0 && NeedsFollowUp(followUp.SoFar);
    }

    private static string Join(string? first, string second) => first is null ? second : $"{first}; {second}";

    /// <summary>The result of a message left with recipients refused as too many when no follow-up can take them (the batch ended).</summary>
    private static MessageResult Unfollowed(FollowUp followUp, string why)
    {
        if (followUp.ClosedAtEnd is { } closed)
        {
            _ = Merge(followUp, closed); // refused with 421 at its end of data, and no connection followed: that refusal stands
            return followUp.SoFar with { Error = Join(followUp.SoFar.Error, $"not sent again: {why}") };
        }

        var left = followUp.SoFar.Recipients.Count(static r => IsTooManyRecipients(r.Reply));
        return followUp.SoFar with { Error = Join(followUp.SoFar.Error, $"{left} recipient{(left == 1 ? string.Empty : "s")} refused as too many not sent the message again: {why}") };
    }

    /// <summary>An accepted message waiting for follow-up transactions.</summary>
    /// <param name="position">Its position in the batch.</param>
    /// <param name="message">The message.</param>
    /// <param name="result">Its result so far.</param>
    private sealed class FollowUp(int position, OutgoingMessage message, MessageResult result)
    {
        public int Position { get; } = position;

        public OutgoingMessage Message { get; } = message;

        public MessageResult SoFar { get; set; } = result;

        /// <summary>Its last follow-up's result when that was refused with 421 at its end of data, to be sent again once; else <see langword="null"/>.</summary>
        public SmtpSendResult? ClosedAtEnd { get; set; }
    }
}
