using Polly;

namespace MailPipe.Resilience;

/// <summary>
/// One message sent with retries, attempt by attempt: each attempt goes to the recipients still to do (refused
/// transiently, or not reached because of a transient failure), never again to one that accepted it; the result merges
/// the attempts. Carried in the <see cref="ResilienceContext"/> so that the retry's predicate sees what is left.
/// </summary>
internal sealed class RemainderSend
{
    /// <summary>The context property under which the retry predicate finds the send.</summary>
    public static readonly ResiliencePropertyKey<RemainderSend> Key = new("MailPipe.Resilience.RemainderSend");

    private readonly SmtpMessage _message;
    private readonly Func<SmtpMessage, CancellationToken, Task<SmtpSendResult>> _send;
    private readonly State[] _states;
    private readonly SmtpReply?[] _replies;
    private SmtpSendResult? _last;
    private SmtpSendResult? _lastAccepted;
    private SmtpSendResult? _lastUnknown;
    private bool _retryUnknown;
    private bool _endOfDataWritten;
    private int _transactions;

    public RemainderSend(SmtpMessage message, Func<SmtpMessage, CancellationToken, Task<SmtpSendResult>> send, CancellationToken callerToken)
    {
        _message = message;
        _send = send;
        CallerToken = callerToken;
        _states = new State[message.Envelope.Recipients.Count];
        _replies = new SmtpReply?[_states.Length];
    }

    private enum State
    {
        /// <summary>Not tried yet, or refused transiently: to do.</summary>
        Pending,

        /// <summary>Accepted by an accepted message: done.</summary>
        Accepted,

        /// <summary>Refused permanently, or not reached because of a permanent failure: done.</summary>
        Permanent,

        /// <summary>Part of a message whose outcome is unknown: done unless the caller opted in.</summary>
        Unknown,
    }

    public CancellationToken CallerToken { get; }

    /// <summary>How many attempts were made.</summary>
    public int Attempts { get; private set; }

    /// <summary>One attempt, run by the pipeline: the message for the recipients still to do, its result merged.</summary>
    public async ValueTask<SmtpSendResult> AttemptAsync(CancellationToken attemptToken)
    {
        var positions = Remaining();
        if (positions.Count == 0)
        {
            // Only a custom predicate that retries what the default would not gets here: nothing is left to send.
            return _last!;
        }

        var message = positions.Count == _states.Length ? _message : _message.WithRecipients([.. positions.Select(p => _message.Envelope.Recipients[p])]);
        Attempts++;
        SmtpSendResult result;
        try
        {
            result = await _send(message, attemptToken).ConfigureAwait(false);
        }
        catch (SmtpOutcomeUnknownException ex) when (!CallerToken.IsCancellationRequested && ex is { Result: var unknown })
        {
            // An attempt timeout (or another strategy's token) fired after the end of data: a result, not a retryable timeout.
            // (The exception's result is read through a property pattern here and below, as everywhere in this package.)
            result = SmtpSendResult.Create(
                message.Envelope,
                SmtpSendOutcome.Unknown,
                unknown.MailReply,
                unknown.Recipients,
                unknown.DataReply,
                unknown.FinalReply,
                new SmtpException(SmtpErrorCode.TimedOut, "The attempt was cancelled (attempt timeout) after the end of data was written: the message may have been delivered.", ex));
        }
        catch (SmtpOutcomeUnknownException ex) when (ex is { Result: var decided })
        {
            Merge(positions, decided);
            throw new SmtpOutcomeUnknownException(Merged(), ex, CallerToken);
        }
        catch (OperationCanceledException ex) when (!CallerToken.IsCancellationRequested && attemptToken.IsCancellationRequested)
        {
            // Cancelled by a timeout strategy before the end of data: nothing of this attempt can have been delivered.
            result = SmtpSendResult.NotSent(message.Envelope, new SmtpException(SmtpErrorCode.TimedOut, "The attempt was cancelled (attempt or total timeout) before the end of data was written; the message was not sent.", ex));
        }
        catch (SmtpException ex)
        {
            // Thrown by the caller's delegate before the message went out (connect, TLS, EHLO, AUTH).
            result = SmtpSendResult.NotSent(message.Envelope, ex);
        }

        // The sender may have made more than one transaction for an attempt (the pooled sender's fresh-connection retry).
        _transactions += Math.Max(1, result.Attempts);
        Merge(positions, result);
        return result;
    }

    /// <summary>The retry decision under <c>SendWithRetryAsync</c>: whether a recipient is left to do.</summary>
    public bool ShouldRetry(Outcome<SmtpSendResult> outcome, bool retryUnknown)
    {
        if (outcome.Exception is { } exception)
        {
            return SmtpResiliencePredicates.IsTransient(exception) && Remaining().Count > 0;
        }

        _retryUnknown = retryUnknown;
        return Remaining().Count > 0;
    }

    /// <summary>The merged result: per recipient the reply that decided it; Accepted if any attempt was accepted; the attempt count.</summary>
    public SmtpSendResult Merged()
    {
        if (Attempts <= 1 && _last is not null)
        {
            return _last;
        }

        var deciding = _lastAccepted ?? _lastUnknown ?? _last!;
        var outcome = _lastAccepted is not null ? SmtpSendOutcome.Accepted
            : _states.Contains(State.Unknown) ? SmtpSendOutcome.Unknown
            : _last!.Outcome;
        var recipients = new SmtpRecipientResult[_states.Length];
        for (var i = 0; i < recipients.Length; i++)
        {
            recipients[i] = new SmtpRecipientResult(_message.Envelope.Recipients[i], _replies[i]);
        }

        return SmtpSendResult.Create(_message.Envelope, outcome, deciding.MailReply, recipients, deciding.DataReply, deciding.FinalReply, deciding.Exception as SmtpException)
            .WithAttempts(Math.Max(Attempts, _transactions));
    }

    /// <summary>Whether an attempt gave a result to merge (an attempt whose delegate threw gives none).</summary>
    public bool HasResult => _last is not null;

    /// <summary>Whether an attempt wrote an end of data (a recipient may have the message).</summary>
    public bool MayHaveDelivered => _endOfDataWritten;

    /// <summary>The positions (in the caller's envelope) of the recipients the next attempt goes to.</summary>
    private List<int> Remaining()
    {
        var positions = new List<int>(_states.Length);
        for (var i = 0; i < _states.Length; i++)
        {
            if (_states[i] == State.Pending || (_retryUnknown && _states[i] == State.Unknown))
            {
                positions.Add(i);
            }
        }

        return positions;
    }

    private void Merge(List<int> positions, SmtpSendResult result)
    {
        _last = result;
        switch (result.Outcome)
        {
            case SmtpSendOutcome.Accepted:
                _lastAccepted = result;
                _endOfDataWritten = true;
                break;
            case SmtpSendOutcome.Unknown:
                _lastUnknown = result;
                _endOfDataWritten = true;
                break;
        }

        var failure = result.Exception is { } exception ? SmtpResiliencePredicates.Classify(exception) : SmtpFailureKind.Transient;
        for (var j = 0; j < positions.Count && j < result.Recipients.Count; j++)
        {
            var p = positions[j];
            var rcpt = result.Recipients[j].Reply;
            SmtpReply? reply;
            (_states[p], reply) = result.Outcome switch
            {
                SmtpSendOutcome.Accepted => rcpt is null ? (State.Pending, null) : ByReply(rcpt),
                SmtpSendOutcome.Refused => result.MailReply is { IsNegative: true } mail ? ByReply(mail)
                    : rcpt is { IsNegative: true } ? ByReply(rcpt)
                    : (result.DataReply is { IsNegative: true } data ? data : result.FinalReply) is { IsNegative: true } refusal ? ByReply(refusal)
                    : (State.Pending, rcpt),
                SmtpSendOutcome.Unknown => rcpt is { IsNegative: true } ? ByReply(rcpt) : (State.Unknown, rcpt),
                _ => rcpt is { IsNegative: true } ? ByReply(rcpt)
                    : failure == SmtpFailureKind.Transient ? (State.Pending, rcpt is { IsPositive: true } ? null : rcpt)
                    : (State.Permanent, rcpt is { IsPositive: true } ? null : rcpt),
            };

            // An attempt that got no reply for the recipient (not sent) leaves the reply of the attempt before it.
            _replies[p] = reply ?? _replies[p];
        }
    }

    private static (State, SmtpReply?) ByReply(SmtpReply reply) => reply switch
    {
        { IsPositiveCompletion: true } => (State.Accepted, reply),
        { IsTransientNegative: true } => (State.Pending, reply),
        _ => (State.Permanent, reply),
    };
}
