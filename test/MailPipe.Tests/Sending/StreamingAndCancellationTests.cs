using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// SendBatchStreamingAsync (results in order, each as soon as known, the batch still pipelined), per-message
/// cancellation (SmtpMessage.WithCancellation), and what a cancelled send or batch reports (SmtpOutcomeUnknownException,
/// SmtpBatchCanceledException).
/// </summary>
public class StreamingAndCancellationTests
{
    private static async Task<SmtpSendResult> NextAsync(IAsyncEnumerator<SmtpSendResult> results)
    {
        (await results.MoveNextAsync().AsTask().Safe()).Should().BeTrue();
        return results.Current;
    }

    [Fact]
    public async Task Streaming_with_CHUNKING_yields_the_first_results_while_the_server_holds_the_last_final_reply()
    {
        var release = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious);
        for (var i = 2; i <= 3; i++)
        {
            script.Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", $"C+ RCPT TO:<m{i}@example.test>")
                .ExpectBytes(Bdat(Content(i), last: true), ClientArrival.WithPrevious);
        }

        script.Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2", "S: 250 reset", "S: 250 ok", "S: 250 ok")
            .WaitFor(release.Task)
            .Then("S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await using var results = session.SendBatchStreamingAsync([Message(1), Message(2), Message(3)]).GetAsyncEnumerator();
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 1");
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 2");
        release.SetResult();
        var third = await NextAsync(results);
        third.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        third.FinalReply!.Text.Should().Be("queued 3");
        (await results.MoveNextAsync().AsTask().Safe()).Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streaming_with_DATA_yields_the_first_results_while_the_server_holds_the_last_final_reply()
    {
        var release = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(2)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 2", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(3)))
            .WaitFor(release.Task)
            .Then("S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await using var results = session.SendBatchStreamingAsync([Message(1), Message(2), Message(3)]).GetAsyncEnumerator();
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 1");
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 2");
        release.SetResult();
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 3");
        (await results.MoveNextAsync().AsTask().Safe()).Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streaming_from_a_sequence_that_waits_flushes_and_yields_what_was_written_first()
    {
        // A producer that hands out the next message only once the previous result is known (as a pooled sender's
        // queue may): without the flush before waiting for the sequence, neither side would ever move.
        var release = new TaskCompletionSource();
        async IAsyncEnumerable<SmtpMessage> Messages()
        {
            yield return Message(1);
            await release.Task;
            yield return Message(2);
        }

        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1")
            .Then("C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(2)))
            .Then("S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await using var results = session.SendBatchStreamingAsync(Messages()).GetAsyncEnumerator();
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 1");
        release.SetResult();
        (await NextAsync(results)).FinalReply!.Text.Should().Be("queued 2");
        (await results.MoveNextAsync().AsTask().Safe()).Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_cancelled_by_its_own_token_is_NotSent_and_the_others_go_out_untouched()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>")
            .ExpectBytes(Bdat(Content(3), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2).WithCancellation(cancelled.Token), Message(3)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeOfType<OperationCanceledException>().Which.CancellationToken.Should().Be(cancelled.Token);
        results[1].MailReply.Should().BeNull();
        results[1].IsTransientFailure.Should().BeFalse();
        results[2].FinalReply!.Text.Should().Be("queued 3");
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("m2@example.test");
    }

    [Fact]
    public async Task SendAsync_of_a_message_cancelled_by_its_own_token_writes_nothing_and_keeps_the_session()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();
        var script = Script(Ehlo(), "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Message(1).WithCancellation(cancelled.Token)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<OperationCanceledException>();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the next command is the first thing written after EHLO");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelling_SendAsync_after_the_end_of_data_throws_SmtpOutcomeUnknownException_with_the_replies(bool chunking)
    {
        var reached = new TaskCompletionSource();
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 2.1.5 ok")
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 2.1.5 ok", "S: 354 go")
                .Then(DataLines(SmallText));
        await using var server = ScriptedSmtpServer.Start(script.Signal(reached).ExpectClosed());
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<SmtpOutcomeUnknownException>();
        var result = thrown.Which.Result;
        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.FinalReply.Should().BeNull();
        result.Exception.Should().BeAssignableTo<OperationCanceledException>();
        thrown.Which.CancellationToken.Should().Be(cts.Token);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Cancelling_SendAsync_before_the_end_of_data_is_a_plain_OperationCanceledException()
    {
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok")
            .Signal(reached).ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        thrown.Which.Should().NotBeOfType<SmtpOutcomeUnknownException>("nothing of the message can have been delivered");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_cancelled_batch_keeps_the_results_decided_so_far()
    {
        var reached = new TaskCompletionSource();
        var script = Script(Ehlo(), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C> MAIL FROM:<sender@example.test>")
            .Signal(reached).ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendBatchAsync([Message(1), Message(2), Message(3)], cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();

        var thrown = await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<SmtpBatchCanceledException>();
        var results = thrown.Which.Results;
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent);
        results[0].FinalReply!.Text.Should().Be("queued 1");
        results[1].Exception.Should().BeAssignableTo<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_cancelled_streaming_batch_has_yielded_the_decided_results_and_reports_Unknown_where_the_end_of_data_was_written()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            // Only the first transaction's replies: the test cancels once it has that result, so the second one's
            // BDAT LAST is on the wire with no reply (nothing else may be sent: the client closes at any moment).
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1")
            .ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        await using var results = session.SendBatchStreamingAsync([Message(1), Message(2)], cts.Token).GetAsyncEnumerator();
        (await NextAsync(results)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await cts.CancelAsync();

        // Every message taken gets its result in the stream (here Unknown: its BDAT LAST went out), then the cancellation is thrown.
        (await NextAsync(results)).Outcome.Should().Be(SmtpSendOutcome.Unknown);
        var thrown = await FluentActions.Awaiting(() => results.MoveNextAsync().AsTask().Safe()).Should().ThrowAsync<SmtpBatchCanceledException>();
        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_content_source_that_throws_its_own_cancellation_gives_its_message_a_result_that_says_why()
    {
        // A content stream that ends with OperationCanceledException of its own (an aborted request body; no token of
        // the caller's): the streamed result of that message must say why it was not sent, not just NotSent.
        var script = Script(Ehlo(), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m2@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var aborted = SmtpMessage.FromStream(Envelope("m2@example.test"), new FailingStream([], new OperationCanceledException("The request body was aborted.")));

        await using var results = session.SendBatchStreamingAsync([Message(1), aborted]).GetAsyncEnumerator();
        (await NextAsync(results)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var second = await NextAsync(results);

        second.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.Exception.Should().BeAssignableTo<OperationCanceledException>().Which.Message.Should().Contain("aborted");
        await FluentActions.Awaiting(() => results.MoveNextAsync().AsTask().Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }
}
