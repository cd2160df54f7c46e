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

/// <summary>Breaker13: DisconnectAsync from another thread (the seed's Cancel() from a UI thread) during a send: an outcome, never an exception.</summary>
public class DisconnectDuringSendBreakTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DisconnectAsync_while_the_final_reply_is_awaited_is_Unknown_not_thrown(bool chunking)
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(FinalReplyNeverSent(chunking, reached));
        using var session = await ConnectedAsync(server);

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText));
        await reached.Task.Safe();
        await WaitUntilOnlyTheFinalReplyIsDueAsync(session);

        await session.DisconnectAsync();
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        result.AcceptedRecipients.Should().HaveCount(1);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task DisconnectAsync_while_354_is_awaited_is_NotSent_and_transient()
    {
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA")
            .SendPieces("250 ok\r\n250 2.1.5 ok\r\n").Signal(reached).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText));
        await reached.Task.Safe();
        await session.DisconnectAsync();
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.IsTransientFailure.Should().BeTrue();
        server.ReceivedText.Should().NotContain("Subject", "no content after DATA got no 354");
        await server.WaitAsync();
    }
}

/// <summary>Breaker13: a batch given a token cancelled before the call sends nothing and keeps the connection (README said it is closed "as for every cancellation").</summary>
public class PreCancelledBatchProbeTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_batch_cancelled_before_it_starts_sends_nothing_and_says_so_for_every_message(bool streaming)
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "CHUNKING")).ReadUntilClosed());
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => SendSequenceAsync(session, Sequence(), streaming, cts.Token)).Should().ThrowAsync<OperationCanceledException>();

        var results = (thrown.Which as SmtpBatchCanceledException)?.Results;
        (results ?? []).Where(r => r.Outcome != SmtpSendOutcome.NotSent).Should().BeEmpty("nothing was sent");
        thrown.Which.Should().BeOfType<SmtpBatchCanceledException>();
        session.IsConnected.Should().BeTrue("nothing was under way: the connection is kept, as for SendAsync");
        session.Dispose();
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("MAIL");
    }

    private static async IAsyncEnumerable<SmtpMessage> Sequence()
    {
        await Task.Yield();
        yield return Message(1);
        yield return Message(2);
    }
}
