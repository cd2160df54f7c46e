using System.Text;
using MailPipe.Sending;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The one typed stop reason of a transaction (<see cref="TransactionStop"/>) and the outcome derived from it
/// (<see cref="MailTransaction.ToResult"/>): the mapping pinned reason by reason, and each reason reached from the
/// state it stands for (the sender's own stops, the replies, why the call stopped).
/// </summary>
public sealed class TransactionStopTests
{
    private static readonly SmtpReply Ok = new(250, "ok");
    private static readonly SmtpReply Refused = new(550, "no");

    /// <summary>Each reason's outcome: before the end of data was written, and after.</summary>
    private static readonly Dictionary<TransactionStop, (SmtpSendOutcome Before, SmtpSendOutcome After)> Pinned = new()
    {
        [TransactionStop.None] = (SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted),
        [TransactionStop.NotAttempted] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent),
        [TransactionStop.Cancelled] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent),
        [TransactionStop.ContentFailed] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent),
        [TransactionStop.OutOfStep] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent),
        [TransactionStop.MailRefused] = (SmtpSendOutcome.Refused, SmtpSendOutcome.Refused),
        [TransactionStop.NoRecipientAccepted] = (SmtpSendOutcome.Refused, SmtpSendOutcome.Refused),
        [TransactionStop.DataRefused] = (SmtpSendOutcome.Refused, SmtpSendOutcome.Refused),
        [TransactionStop.MessageRefused] = (SmtpSendOutcome.Refused, SmtpSendOutcome.Refused),
        [TransactionStop.Abandoned] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown),
        [TransactionStop.ServiceClosing] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent),
        [TransactionStop.ProtocolViolation] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown),
        [TransactionStop.Timeout] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown),
        [TransactionStop.CallCancelled] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown),
        [TransactionStop.ConnectionLost] = (SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown),
    };

    [Fact]
    public void Every_stop_reason_has_its_pinned_outcome_before_and_after_the_end_of_data()
    {
        Pinned.Keys.Should().BeEquivalentTo(Enum.GetValues<TransactionStop>(), "every reason is pinned");
        foreach (var (stop, (before, after)) in Pinned)
        {
            MailTransaction.OutcomeOf(stop, endOfDataWritten: false).Should().Be(before, stop.ToString());
            MailTransaction.OutcomeOf(stop, endOfDataWritten: true).Should().Be(after, stop.ToString());
        }
    }

    [Theory]
    [InlineData(nameof(TransactionStop.NotAttempted), false)]
    [InlineData(nameof(TransactionStop.Cancelled), false)]
    [InlineData(nameof(TransactionStop.ContentFailed), true)]
    public void The_senders_own_stop_wins_over_the_calls_failure_and_carries_its_exception(string reason, bool countsAsChecked)
    {
        var stop = Enum.Parse<TransactionStop>(reason);
        var tx = Transaction(2);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Refused);
        tx.SetRecipientReply(1, Refused);
        var own = new SmtpException(SmtpErrorCode.ContentReadFailed, "own");
        tx.Stop(stop, own);

        var result = tx.ToResult(new SmtpException(SmtpErrorCode.ConnectionClosed, "call"));

        tx.StopReason(null).Should().Be(stop);
        tx.IsWithdrawn.Should().Be(!countsAsChecked);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeSameAs(own);
    }

    [Fact]
    public void A_content_failure_never_replaces_a_withdrawal_and_a_withdrawal_replaces_a_content_failure()
    {
        var cancelled = new OperationCanceledException("own token");
        var tx = Transaction(1);
        tx.Stop(TransactionStop.Cancelled, cancelled);
        tx.Stop(TransactionStop.ContentFailed, new SmtpException(SmtpErrorCode.ContentReadFailed, "content"));
        tx.StopReason(null).Should().Be(TransactionStop.Cancelled);
        tx.ToResult(null).Exception.Should().BeSameAs(cancelled);

        var notAttempted = new SmtpException(SmtpErrorCode.MessageTooLarge, "too large");
        var other = Transaction(1);
        other.Stop(TransactionStop.ContentFailed, new SmtpException(SmtpErrorCode.ContentReadFailed, "content"));
        other.Stop(TransactionStop.NotAttempted, notAttempted);
        other.StopReason(null).Should().Be(TransactionStop.NotAttempted);
        other.ToResult(null).Exception.Should().BeSameAs(notAttempted);
    }

    [Fact]
    public void No_stop_of_the_sender_is_recorded_once_the_end_of_data_was_written()
    {
        var tx = Transaction(1);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Ok);
        tx.EndOfDataWritten = true;
        tx.Stop(TransactionStop.Cancelled, new OperationCanceledException());
        var lost = new SmtpException(SmtpErrorCode.ConnectionClosed, "lost");

        var result = tx.ToResult(lost);

        tx.StopReason(lost).Should().Be(TransactionStop.ConnectionLost);
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.Exception.Should().BeSameAs(lost);
    }

    [Theory]
    [InlineData(250, 250, 250, nameof(TransactionStop.None), SmtpSendOutcome.Accepted)]
    [InlineData(250, 250, 554, nameof(TransactionStop.MessageRefused), SmtpSendOutcome.Refused)]
    [InlineData(250, 550, 250, nameof(TransactionStop.NoRecipientAccepted), SmtpSendOutcome.Refused)]
    [InlineData(550, 503, 554, nameof(TransactionStop.MailRefused), SmtpSendOutcome.Refused)]
    public void A_final_reply_decides_whatever_stopped_the_call_afterwards(int mail, int rcpt, int final, string reason, SmtpSendOutcome outcome)
    {
        var tx = Transaction(1);
        tx.MailReply = new SmtpReply(mail, "mail");
        tx.SetRecipientReply(0, new SmtpReply(rcpt, "rcpt"));
        tx.EndOfDataWritten = true;
        tx.FinalReply = new SmtpReply(final, "final");
        var later = new SmtpException(SmtpErrorCode.ConnectionClosed, "a later transaction's failure");

        var result = tx.ToResult(later);

        tx.StopReason(later).Should().Be(Enum.Parse<TransactionStop>(reason));
        result.Outcome.Should().Be(outcome);
        result.Exception.Should().BeNull();
    }

    [Theory]
    [InlineData(550, 0, 0, false, nameof(TransactionStop.MailRefused))]
    [InlineData(250, 550, 0, false, nameof(TransactionStop.NoRecipientAccepted))]
    [InlineData(250, 550, 0, true, nameof(TransactionStop.NoRecipientAccepted))]
    [InlineData(250, 250, 554, false, nameof(TransactionStop.DataRefused))]
    public void A_refusal_before_the_end_of_data_is_Refused_without_an_exception(int mail, int rcpt, int data, bool callFailed, string reason)
    {
        var tx = Transaction(1);
        tx.MailReply = new SmtpReply(mail, "mail");
        if (rcpt != 0)
        {
            tx.SetRecipientReply(0, new SmtpReply(rcpt, "rcpt"));
        }

        if (data != 0)
        {
            tx.DataReply = new SmtpReply(data, "data");
        }

        var failure = callFailed ? new SmtpException(SmtpErrorCode.ConnectionClosed, "lost") : null;

        var result = tx.ToResult(failure);

        tx.StopReason(failure).Should().Be(Enum.Parse<TransactionStop>(reason));
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Exception.Should().BeNull();
    }

    [Fact]
    public void A_refused_DATA_while_the_call_failed_is_the_failure_not_a_refusal()
    {
        var tx = Transaction(1);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Ok);
        tx.DataReply = new SmtpReply(554, "no");
        var lost = new SmtpException(SmtpErrorCode.ConnectionClosed, "lost");

        var result = tx.ToResult(lost);

        tx.StopReason(lost).Should().Be(TransactionStop.ConnectionLost);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeSameAs(lost);
    }

    [Fact]
    public void Replies_that_stopped_with_nothing_to_blame_are_Abandoned_and_NotSent()
    {
        var tx = Transaction(2);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Ok);

        var result = tx.ToResult(null);

        tx.StopReason(null).Should().Be(TransactionStop.Abandoned);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeNull();
    }

    [Fact]
    public void A_transaction_abandoned_after_its_end_of_data_was_written_is_Unknown_never_NotSent()
    {
        // A batch that stops on bad input ends its call without a failure; a transaction whose end of data went out
        // before that and whose final reply never came may have been delivered: NotSent would invite a duplicate.
        var tx = Transaction(1);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Ok);
        tx.DataReply = new SmtpReply(354, "go ahead");
        tx.EndOfDataWritten = true;

        var result = tx.ToResult(null);

        tx.StopReason(null).Should().Be(TransactionStop.Abandoned);
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
    }

    public static TheoryData<string, bool, string, SmtpSendOutcome> CallFailures() => new()
    {
        { "421", true, nameof(TransactionStop.ServiceClosing), SmtpSendOutcome.NotSent },
        { "421", false, nameof(TransactionStop.ServiceClosing), SmtpSendOutcome.NotSent },
        { "protocol", true, nameof(TransactionStop.ProtocolViolation), SmtpSendOutcome.Unknown },
        { "protocol", false, nameof(TransactionStop.ProtocolViolation), SmtpSendOutcome.NotSent },
        { "timeout", true, nameof(TransactionStop.Timeout), SmtpSendOutcome.Unknown },
        { "timeout", false, nameof(TransactionStop.Timeout), SmtpSendOutcome.NotSent },
        { "cancelled", true, nameof(TransactionStop.CallCancelled), SmtpSendOutcome.Unknown },
        { "cancelled", false, nameof(TransactionStop.CallCancelled), SmtpSendOutcome.NotSent },
        { "closed", true, nameof(TransactionStop.ConnectionLost), SmtpSendOutcome.Unknown },
        { "closed", false, nameof(TransactionStop.ConnectionLost), SmtpSendOutcome.NotSent },
    };

    [Theory]
    [MemberData(nameof(CallFailures))]
    public void The_calls_failure_is_the_reason_of_a_transaction_without_a_final_reply(string kind, bool endOfDataWritten, string reason, SmtpSendOutcome outcome)
    {
        Exception failure = kind switch
        {
            "421" => new SmtpException(SmtpErrorCode.ServiceNotAvailable, "421 closing"),
            "protocol" => new SmtpProtocolException("an extra reply"),
            "timeout" => new SmtpException(SmtpErrorCode.TimedOut, "timed out"),
            "cancelled" => new OperationCanceledException("the call's token"),
            _ => new SmtpException(SmtpErrorCode.ConnectionClosed, "closed"),
        };
        var tx = Transaction(1);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Ok);
        tx.DataReply = new SmtpReply(354, "go ahead");
        tx.EndOfDataWritten = endOfDataWritten;

        var result = tx.ToResult(failure);

        tx.StopReason(failure).Should().Be(Enum.Parse<TransactionStop>(reason));
        result.Outcome.Should().Be(outcome);
        result.Exception.Should().BeSameAs(failure);
    }

    [Fact]
    public void After_a_protocol_violation_past_the_end_of_data_no_refusal_is_read_from_the_replies()
    {
        var tx = Transaction(1);
        tx.MailReply = Ok;
        tx.SetRecipientReply(0, Refused);
        tx.EndOfDataWritten = true;
        var violation = new SmtpProtocolException("replies out of order");

        var result = tx.ToResult(violation);

        tx.StopReason(violation).Should().Be(TransactionStop.ProtocolViolation);
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.Exception.Should().BeSameAs(violation);
    }

    private static MailTransaction Transaction(int recipients)
    {
        var envelope = new SmtpEnvelope("sender@example.test", [.. Enumerable.Range(0, recipients).Select(i => $"r{i}@example.test")]);
        return new MailTransaction(SmtpMessage.FromBytes(envelope, Encoding.ASCII.GetBytes("Subject: t\r\n\r\nbody\r\n")));
    }
}
