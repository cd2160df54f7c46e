using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker 20: a server that refuses the RSET between pipelined transactions and closes the connection (Exim's
/// "554 Too many nonmail commands" once smtp_accept_max_nonmail, 10 by default, RSETs followed refused transactions)
/// processed nothing written after that RSET: the transactions written after it were not sent, never Unknown.
/// </summary>
public class Breaker20RefusedResetTests
{
    [Fact]
    public async Task Transactions_written_after_a_refused_RSET_that_the_server_closed_on_are_NotSent_not_Unknown()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 Valid RCPT command must precede BDAT", "S: 554 Too many nonmail commands", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, "the server refused the RSET before it and closed: " + results[1]);
        results[1].IsTransientFailure.Should().BeTrue();
        var error = results[1].Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.Reply!.Code.Should().Be(554);
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_refused_RSET_on_a_connection_that_goes_on_changes_nothing()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 no valid recipients", "S: 502 5.5.2 not implemented", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.Accepted, results[1].ToString());
        session.IsConnected.Should().BeTrue();
    }

    /// <summary>
    /// brk16pool, against Exim 4.96: a RSET after a non-LAST BDAT chunk (a content source that failed midway) got
    /// "503 only BDAT permissible after non-LAST BDAT", and every command pipelined after it "503 only RSET accepted
    /// now": the next message came back Refused with 503s, a permanent refusal for a message the server never looked at.
    /// </summary>
    [Fact]
    public async Task A_MAIL_refused_right_after_a_refused_RSET_is_NotSent_and_transient_not_Refused()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 no valid recipients", "S: 503 5.5.1 only BDAT permissible after non-LAST BDAT",
                "S: 503 5.5.1 only RSET accepted now", "S: 503 5.5.1 only RSET accepted now", "S: 503 5.5.1 only RSET accepted now");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results[0].Outcome.Should().Be(SmtpSendOutcome.Refused, results[0].ToString());
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent, results[1].ToString());
        results[1].IsTransientFailure.Should().BeTrue("the server never looked at the message: another connection may send it");
        var error = results[1].Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.Reply!.Code.Should().Be(503);
        error.Message.Should().Contain("refused RSET").And.Contain("only RSET accepted now");
        results[1].MailReply!.Code.Should().Be(503, "the replies are kept as they came");
    }
}
