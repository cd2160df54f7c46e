using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Postfix's submission port (5870 here) with <see cref="SmtpTlsMode.None"/>: MAIL, RCPT and the pipelined BDAT LAST are
/// each answered <c>530 5.7.0 Must issue a STARTTLS command first</c>, then Postfix says <c>221 2.7.0 Error: I can break
/// rules, too. Goodbye.</c> and closes, all in one segment. The reply to BDAT LAST, followed by that unasked 221, was withheld, and the
/// send was reported <see cref="SmtpSendOutcome.Unknown"/> ("it may have been delivered"): with MAIL refused there was
/// no mail transaction, and nothing can have been delivered. The refusal decides.
/// </summary>
public class RefusedEnvelopeClosingTests
{
    [Theory]
    [InlineData("530 5.7.0 Must issue a STARTTLS command first")]
    [InlineData("250 2.1.0 Ok")]
    public async Task A_refused_envelope_is_Refused_even_when_the_end_of_data_reply_is_followed_by_a_close(string mailReply)
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .SendRaw($"{mailReply}\r\n530 5.7.0 Must issue a STARTTLS command first\r\n530 5.7.0 Must issue a STARTTLS command first\r\n221 2.7.0 Error: I can break rules, too. Goodbye.\r\n")
            .Close();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
        result.IsTransientFailure.Should().BeFalse();
        result.Recipients[0].Reply!.Code.Should().Be(530);
        await server.WaitAsync();
    }
}
