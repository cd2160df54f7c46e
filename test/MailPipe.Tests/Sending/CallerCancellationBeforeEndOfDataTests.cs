using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A new user's probes of the caller's cancellation that no wait observes: in-memory content and a pipelined batch are
/// written into the output buffer without a wait, so a token cancelled meanwhile was only seen at the next flush. The
/// end of data (and a message taken from the caller's sequence after the cancellation) was still formed, so the
/// message was reported Unknown ("may have been delivered; do not resend") although its end of data never left
/// (the cancelled flush sent nothing). Found against Postfix: a sequence that cancelled and yielded one more message got
/// that message back as Unknown.
/// </summary>
public class CallerCancellationBeforeEndOfDataTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_taken_after_the_callers_cancellation_is_not_sent_and_never_Unknown(bool chunking)
    {
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(CancelThenYield(cts, Message(1), Message(2)), cts.Token).Safe())
            .Should().ThrowAsync<SmtpBatchCanceledException>();

        thrown.Which.Results.Where(r => r.Envelope.Recipients[0].Address == "m2@example.test")
            .Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent, "m2 was handed over after the caller cancelled: nothing of it may go out");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("m2@example.test");
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_send_cancelled_while_its_content_writer_ran_is_a_cancellation_not_an_unknown_outcome(bool chunking)
    {
        // The writer finishes its content and the caller cancels: the end of data must not be formed after that.
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();
        var message = SmtpMessage.FromWriter(Envelope("m1@example.test"), async (stream, ct) =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(Content(1)), ct);
            await cts.CancelAsync();
        });

        var thrown = await FluentActions.Awaiting(() => session.SendAsync(message, cts.Token).Safe()).Should().ThrowAsync<OperationCanceledException>();

        thrown.Which.Should().NotBeOfType<SmtpOutcomeUnknownException>("the end of data was never sent");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("LAST").And.NotContain("\r\n.\r\n");
        session.IsConnected.Should().BeFalse();
    }
}
