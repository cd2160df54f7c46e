using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker13: a send cancelled after its end of data was written, while its final reply is awaited, when the replies
/// already read rule delivery out (every recipient refused, or MAIL refused): the outcome is not unknown. The call threw
/// <see cref="SmtpOutcomeUnknownException"/> ("the message may have been delivered") whose result said Refused.
/// </summary>
public class DecidedBeforeCancelBreakTests
{
    [Theory]
    [InlineData("250 2.1.0 ok\r\n550 5.1.1 no such user\r\n")]
    [InlineData("550 5.7.1 sender refused\r\n503 5.5.1 need MAIL\r\n")]
    public async Task Cancelled_after_BDAT_LAST_with_delivery_already_ruled_out_returns_the_refusal(string replies)
    {
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .SendPieces(replies)
            .Signal(reached).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();
        SmtpSendResult? result = null;
        var thrown = await Record.ExceptionAsync(async () => result = await send.Safe());

        thrown.Should().BeNull("the replies read rule delivery out: {0}", (thrown as SmtpOutcomeUnknownException)?.Result);
        result.Should().NotBeNull();
        result!.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.AcceptedRecipients.Should().BeEmpty();
        result.IsTransientFailure.Should().BeFalse();
        session.IsConnected.Should().BeFalse("a cancellation closes the connection");
        await server.WaitAsync();
    }
}
