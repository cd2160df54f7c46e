using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A pipelined batch cancelled while a message's end of data (the final dot, or BDAT LAST) was still only in the
/// client's output buffer, never flushed: the connection is closed without sending it, so that message cannot have
/// been delivered. It was reported Unknown ("may have been delivered; do not resend"), which makes a careful caller
/// drop or hold a message the server never had. NotSent only when no flush began after the end was written; a flush
/// that began (even cancelled) may have sent it, and the result stays Unknown.
/// </summary>
public class UnflushedEndOfDataCancellationTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_whose_end_of_data_never_left_the_buffer_is_not_sent_when_the_batch_is_cancelled(bool chunking)
    {
        await using var server = ScriptedSmtpServer.Start(FirstMessageUntilClosed(chunking));
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(CancelThenYield(cts, Message(1), Message(2)), cts.Token).Safe())
            .Should().ThrowAsync<SmtpBatchCanceledException>();

        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("LAST").And.NotContain("\r\n.\r\n", "m1's end of data was still in the client's buffer when the call was cancelled");
        var first = thrown.Which.Results.Should().ContainSingle(r => r.Envelope.Recipients[0].Address == "m1@example.test").Which;
        first.Outcome.Should().Be(SmtpSendOutcome.NotSent, "no byte of its end of data reached the transport: the server cannot have the message");
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_message_whose_end_of_data_was_flushed_stays_unknown_when_the_batch_is_cancelled()
    {
        // The end of data went out (the streaming call flushes while the sequence waits); no final reply yet.
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Signal(reached)
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var results = new List<SmtpSendResult>();
        var thrown = await FluentActions.Awaiting(async () =>
        {
            await foreach (var result in session.SendBatchStreamingAsync(WaitThenCancel(reached.Task, cts, Message(1), Message(2)), cts.Token))
            {
                results.Add(result);
            }
        }).Should().ThrowAsync<OperationCanceledException>();

        await server.WaitAsync();
        results.Should().ContainSingle(r => r.Envelope.Recipients[0].Address == "m1@example.test")
            .Which.Outcome.Should().Be(SmtpSendOutcome.Unknown, "its end of data reached the server, which may have the message");
    }

    private static async IAsyncEnumerable<SmtpMessage> WaitThenCancel(Task reached, CancellationTokenSource cts, SmtpMessage first, SmtpMessage second)
    {
        yield return first;
        await reached;
        await cts.CancelAsync();
        yield return second;
    }
}
