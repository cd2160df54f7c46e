using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A reviewer's attempts to break "the caller's sequence throws in SendBatchAsync" (SmtpBatchSequenceException): without
/// PIPELINING, with CHUNKING, a throw from the enumerator's other members, after a 421, with the caller's token
/// cancelled, a streaming call left early, and the session's state afterwards.
/// </summary>
public class BatchSequenceBreakTests
{
    private static readonly string[] Ok = ["S: 250 ok"];

    /// <summary>One message of a pipelined batch: MAIL, RCPT and DATA in one group, then the content and its final reply.</summary>
    /// <summary>(RSET first: a pipelined batch's later transaction is written before the earlier one's final reply is known.)</summary>
    private static string[] Piped(int i, string final = "250 2.0.0 queued", bool rset = false) =>
        [.. rset ? ["C: RSET"] : Array.Empty<string>(), "C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>", "C: DATA", .. rset ? Ok : [], "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false), $"S: {final} {i}"];

    /// <summary>One message without PIPELINING: every command waits for its reply.</summary>
    private static string[] OneByOne(int i, string final = "250 2.0.0 queued") =>
        ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", $"C: RCPT TO:<m{i}@example.test>", "S: 250 ok", "C: DATA", "S: 354 go", .. DataLines(Content(i)), $"S: {final} {i}"];

    [Fact]
    public async Task Without_PIPELINING_the_messages_before_the_throw_keep_their_outcomes_and_a_refused_last_one_makes_the_next_call_start_with_RSET()
    {
        var script = Script(Ehlo("8BITMIME")).Then(OneByOne(1)).Then(OneByOne(2, final: "550 5.7.1 refused"))
            .Then("C: RSET", "S: 250 ok").Then(OneByOne(3));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(new InvalidOperationException("boom"), Message(1), Message(2))).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused);
        (await session.SendAsync(Message(3)).Safe()).IsAccepted.Should().BeTrue("the refused transaction was reset first (the script expects RSET)");
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_CHUNKING_and_no_PIPELINING_the_message_before_the_throw_is_finished_and_the_next_call_needs_no_RSET()
    {
        var script = Script(Ehlo("CHUNKING"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<m1@example.test>", "S: 250 ok")
            .ExpectRaw($"BDAT {Content(1).Length} LAST\r\n{Content(1)}").Then("S: 250 2.0.0 queued 1")
            .Then("C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<m2@example.test>", "S: 250 ok")
            .ExpectRaw($"BDAT {Content(2).Length} LAST\r\n{Content(2)}").Then("S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(new IOException("disk"), Message(1))).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        thrown.Which.InnerException.Should().BeOfType<IOException>();
        (await session.SendAsync(Message(2)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Pipelined_an_accepted_last_message_lets_the_next_call_start_without_RSET()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then(Piped(2));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(new InvalidOperationException("boom"), Message(1))).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        (await session.SendAsync(Message(2)).Safe()).IsAccepted.Should().BeTrue("no RSET: the script expects MAIL at once");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Pipelined_a_354_with_no_recipient_accepted_is_ended_and_reset_before_the_exception()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 550 5.1.1 no such user", "S: 354 go")
            .Then("C: .", "C+ RSET", "S: 554 5.5.1 no valid recipients", "S: 250 ok")
            .Then(Piped(2));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(new InvalidOperationException("boom"), Message(1))).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().ContainSingle().Which.Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.SendAsync(Message(2)).Safe()).IsAccepted.Should().BeTrue("the RSET was sent by the batch: no second one");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_421_for_an_earlier_message_ends_the_taking_so_the_sequences_later_throw_never_comes()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 421 4.3.2 shutting down", "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync(Sequence(new InvalidOperationException("boom"), Message(1), Message(2))).Safe();

        // A 421 to MAIL is the server's refusal of that transaction (transient); the connection is closing, so the
        // sequence is not asked for the next message (nor does it get to throw).
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Refused);
        results[0].MailReply!.Code.Should().Be(421);
        results[0].IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_from_GetAsyncEnumerator_is_the_sequences_failure_too()
    {
        var script = Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new HandWritten([], throwsOnGet: true)).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().BeEmpty();
        thrown.Which.InnerException.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("get");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_from_Current_keeps_the_results_of_the_messages_before()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new HandWritten([Message(1), Message(2)], throwsOnCurrent: 1)).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        thrown.Which.InnerException.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("current");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_from_DisposeAsync_after_the_last_message_keeps_every_result()
    {
        // The messages were all delivered: a raw exception without their results would have the caller send them again.
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then(Piped(2, rset: true)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new HandWritten([Message(1), Message(2)], throwsOnDispose: true)).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        thrown.Which.InnerException.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("dispose");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_from_DisposeAsync_after_the_sequence_threw_keeps_the_first_exception_and_the_results()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new HandWritten([Message(1), Message(2)], throwsOnMove: 1, throwsOnDispose: true)).Safe())
            .Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        thrown.Which.InnerException.Should().BeOfType<InvalidOperationException>().Which.Message.Should().Be("move");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_from_DisposeAsync_after_a_bad_message_keeps_the_SmtpBatchArgumentException()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new HandWritten([Message(1), null!], throwsOnDispose: true)).Safe())
            .Should().ThrowAsync<SmtpBatchArgumentException>();

        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_throw_while_the_callers_token_is_cancelled_is_a_cancellation_with_the_results()
    {
        // The sequence cancels the caller's token, then fails: cancellation wins (the connection is closed, the
        // message whose end of data was written but never flushed is reported Unknown, never Accepted).
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(new IOException("disk"), [Message(1)], beforeThrow: cts.Cancel), cts.Token).Safe())
            .Should().ThrowAsync<Exception>();

        var results = thrown.Which switch
        {
            SmtpBatchCanceledException canceled => canceled.Results,
            SmtpBatchSequenceException sequence => sequence.Results,
            _ => throw new InvalidOperationException($"unexpected {thrown.Which.GetType()}: {thrown.Which}"),
        };
        results.Should().ContainSingle().Which.IsAccepted.Should().BeFalse();
        thrown.Which.Should().BeOfType<SmtpBatchCanceledException>();
        results[0].Outcome.Should().NotBe(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Streaming_with_CHUNKING_and_PIPELINING_yields_both_results_then_the_exception_and_the_session_goes_on(bool throws)
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"));
        foreach (var i in new[] { 1, 2 })
        {
            // Replies are read concurrently from the first wait on: the next transaction starts with RSET (by design).
            script.Then(i == 2 ? ["C: RSET"] : []).Then("C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>").ExpectRaw($"BDAT {Content(i).Length} LAST\r\n{Content(i)}")
                .Then(i == 2 ? Ok : []).Then("S: 250 ok", "S: 250 ok", $"S: 250 2.0.0 queued {i}");
        }

        script.Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m3@example.test>").ExpectRaw($"BDAT {Content(3).Length} LAST\r\n{Content(3)}")
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var failure = new FormatException("row 3");

        var yielded = new List<SmtpSendResult>();
        Exception? caught = null;
        try
        {
            await foreach (var result in session.SendBatchStreamingAsync(Sequence(throws ? failure : null, Message(1), Message(2))))
            {
                yielded.Add(result);
            }
        }
        catch (FormatException ex)
        {
            caught = ex;
        }

        caught.Should().BeSameAs(throws ? failure : null);
        yielded.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        (await session.SendAsync(Message(3)).Safe()).IsAccepted.Should().BeTrue("the last transaction ended well: no RSET");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streaming_left_early_does_not_throw_the_sequences_later_exception_over_the_callers_own()
    {
        // Leaving it early finishes the messages taken first (their remaining results are dropped): the batch may meet
        // the sequence's throw (asked for before the caller left), which must not replace the exception that made the
        // caller leave.
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then(Piped(2)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        // Message 2 is taken only once message 1's result is out (no RSET due, as the script says). The sequence took it
        // after a Task.Yield only: when the yield's continuation had completed MoveNextAsync before the session looked,
        // message 2 went out behind message 1's unanswered end of data, with RSET first, off the script.
        var firstResult = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await FluentActions.Awaiting(async () =>
        {
            await foreach (var result in session.SendBatchStreamingAsync(AfterFirstResult(firstResult.Task)))
            {
                firstResult.TrySetResult();
                throw new KeyNotFoundException("the caller's own");
            }
        }).Should().ThrowAsync<KeyNotFoundException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streaming_left_early_with_break_does_not_throw_from_the_enumerations_disposal()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Piped(1)).Then(Piped(2)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        // Message 2 is taken only once message 1's result is out: taken while message 1's end of data was still
        // unanswered, it would start with RSET (the script has none), which a loaded run once produced.
        var firstResult = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var yielded = 0;
        await FluentActions.Awaiting(async () =>
        {
            await foreach (var result in session.SendBatchStreamingAsync(AfterFirstResult(firstResult.Task)))
            {
                yielded++;
                firstResult.TrySetResult();
                break;
            }
        }).Should().NotThrowAsync();

        yielded.Should().Be(1);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    private static IAsyncEnumerable<SmtpMessage> Sequence(Exception? failure, params SmtpMessage[] messages) => Sequence(failure, messages, beforeThrow: null);

    private static async IAsyncEnumerable<SmtpMessage> AfterFirstResult(Task firstResult)
    {
        await Task.Yield();
        yield return Message(1);
        await firstResult.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        yield return Message(2);
        await Task.Yield();
        throw new IOException("disk");
    }

    private static async IAsyncEnumerable<SmtpMessage> Sequence(Exception? failure, SmtpMessage[] messages, Action? beforeThrow)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }

        await Task.Yield();
        beforeThrow?.Invoke();
        if (failure is not null)
        {
            throw failure;
        }
    }

    /// <summary>A hand-written sequence whose members throw where told (synchronously); an index is the MoveNextAsync call's, from 0.</summary>
    private sealed class HandWritten(SmtpMessage[] messages, bool throwsOnGet = false, int throwsOnMove = -1, int throwsOnCurrent = -1, bool throwsOnDispose = false)
        : IAsyncEnumerable<SmtpMessage>, IAsyncEnumerator<SmtpMessage>
    {
        private int _index = -1;

        public SmtpMessage Current => _index == throwsOnCurrent ? throw new InvalidOperationException("current") : messages[_index];

        public IAsyncEnumerator<SmtpMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default) =>
            throwsOnGet ? throw new InvalidOperationException("get") : this;

        public ValueTask<bool> MoveNextAsync() => ++_index == throwsOnMove ? throw new InvalidOperationException("move") : new(_index < messages.Length);

        public ValueTask DisposeAsync() => throwsOnDispose ? throw new InvalidOperationException("dispose") : ValueTask.CompletedTask;
    }
}
