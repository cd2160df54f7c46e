using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Session 18: past smtp_max_synprot_errors (3 syntax or protocol errors on the connection) Exim answers the command
/// "501-...", "501 Too many syntax or protocol errors" and closes the connection without reading what follows: the
/// transactions written after that command were never processed, so they are NotSent (retried by the pool), not Unknown.
/// </summary>
public class Synprot18SynprotLimitTests
{
    [Fact]
    public async Task Transactions_written_after_Exims_synprot_limit_reply_are_NotSent_not_Unknown()
    {
        await using var server = ScriptedSmtpServer.Start(TwoChunkedMessages("S: 501-<m1@example.test>: domain literals not allowed", "S: 501 Too many syntax or protocol errors"));
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, "Exim ended the session before it: " + results[1]);
        results[1].IsTransientFailure.Should().BeTrue();
        var error = results[1].Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.Reply!.Lines[^1].Should().Contain("Too many syntax or protocol errors");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_close_after_another_refusal_leaves_a_transaction_whose_last_chunk_was_written_Unknown()
    {
        // Nothing says the server stopped at that reply: it may have taken the next message and its replies been lost.
        await using var server = ScriptedSmtpServer.Start(TwoChunkedMessages("S: 501 5.1.3 Bad recipient address syntax"));
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.Unknown, results[1].ToString());
    }

    private static SmtpScript TwoChunkedMessages(params string[] rcptReply) =>
        Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then(["S: 250 ok", .. rcptReply, "CLOSE"]);
}
