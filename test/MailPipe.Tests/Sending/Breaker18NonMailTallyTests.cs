using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker 18: the session tallies what Exim counts against smtp_accept_max_nonmail, from the replies in wire order:
/// every NOOP; every RSET but the first after the session starts or after a message's data was taken (a last BDAT
/// answered 503 had no valid recipient: no data taken). The shared sender retires a connection by it.
/// </summary>
public class Breaker18NonMailTallyTests
{
    [Fact]
    public async Task RSETs_after_refused_transactions_and_NOOPs_are_counted_the_first_and_the_one_after_a_message_are_not()
    {
        var script = Transaction(Script(Ehlo("PIPELINING", "CHUNKING")), 1, reset: false)
            .Then("S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 Valid RCPT command must precede BDAT");
        script = Transaction(script, 2, reset: true) // free: the session's first
            .Then("S: 250 reset", "S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 Valid RCPT command must precede BDAT");
        script = Transaction(script, 3, reset: true) // counted: 1
            .Then("S: 250 reset", "S: 250 ok", "S: 250 accepted", "S: 250 queued");
        script = Transaction(script, 4, reset: false)
            .Then("S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 Valid RCPT command must precede BDAT");
        script = Transaction(script, 5, reset: true) // free: the first after message 3's data
            .Then("S: 250 reset", "S: 250 ok", "S: 550 5.1.1 User unknown", "S: 503 Valid RCPT command must precede BDAT")
            .Then("C: RSET", "S: 250 reset") // counted: 2
            .Then("C: NOOP", "S: 250 ok"); // counted: 3
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var outcomes = new List<SmtpSendOutcome>();
        for (var i = 1; i <= 5; i++)
        {
            outcomes.Add((await session.SendAsync(Message(i)).Safe()).Outcome);
        }

        (await session.RsetAsync().Safe()).Code.Should().Be(250);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);

        outcomes.Should().Equal(SmtpSendOutcome.Refused, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Refused);
        session.NonMailCommands.Should().Be(3);
    }

    private static SmtpScript Transaction(SmtpScript script, int i, bool reset) =>
        script.Then([.. reset ? ["C: RSET"] : Array.Empty<string>(), reset ? "C+ MAIL FROM:<sender@example.test>" : "C: MAIL FROM:<sender@example.test>", $"C+ RCPT TO:<m{i}@example.test>"])
            .ExpectBytes(Bdat(Content(i), last: true), ClientArrival.WithPrevious);
}
