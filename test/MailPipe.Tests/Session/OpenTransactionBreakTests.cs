using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>
/// Breaker13: a send whose every recipient was refused leaves the server inside the transaction its MAIL opened
/// (Postfix, Exim and aiosmtpd alike answer the next MAIL with 503 "nested MAIL"). The envelope API ends it with RSET
/// before its own next MAIL, and before AUTH and STARTTLS; the caller's own <c>MailFromAsync</c> went out inside it and
/// got a 503 for a transaction the caller never opened.
/// </summary>
public class OpenTransactionBreakTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task MailFromAsync_after_a_send_that_left_a_transaction_open_is_preceded_by_RSET(bool pipelining)
    {
        var script = pipelining
            ? Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 2.1.0 ok", "S: 550 5.1.1 unknown", "S: 554 5.5.1 no valid recipients")
            : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 2.1.0 ok", "C: RCPT TO:<one@example.test>", "S: 550 5.1.1 unknown");
        script.Then("C> RSET", "S: 250 2.0.0 ok", "C> MAIL FROM:<other@example.test>", "S: 250 2.1.0 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.MailFromAsync("other@example.test").Safe()).Code.Should().Be(250, "the caller opened no transaction");
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_callers_own_transaction_is_the_callers_a_second_MAIL_goes_out_as_it_is()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<a@example.test>", "S: 250 ok", "C> MAIL FROM:<b@example.test>", "S: 503 5.5.1 nested MAIL command");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync("a@example.test").Safe()).Code.Should().Be(250);
        (await session.MailFromAsync("b@example.test").Safe()).Code.Should().Be(503, "a command method sends its command, nothing else, inside the caller's transaction");
        await server.WaitAsync();
    }

    [Fact]
    public async Task After_an_accepted_send_MailFromAsync_goes_out_alone()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued", "C> MAIL FROM:<other@example.test>", "S: 250 2.1.0 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await session.MailFromAsync("other@example.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
