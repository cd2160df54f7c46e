using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The caller's own async sequence throws in the middle of SendBatchAsync (issue #9's "noticed and left": its exception
/// came out raw and the outcomes of the messages already sent were lost, so a retry could send them twice).
/// </summary>
public class BatchSequenceFailureTests
{
    private static string[] Tx(int i, bool rset = false) =>
        [.. rset ? ["C: RSET"] : Array.Empty<string>(), "C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>", "C: DATA", .. rset ? ["S: 250 ok"] : Array.Empty<string>(), "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false), "S: 250 2.0.0 queued " + i];

    [Theory]
    [InlineData(typeof(InvalidOperationException))]
    [InlineData(typeof(IOException))]
    [InlineData(typeof(ArgumentException))]
    public async Task The_sequences_exception_comes_wrapped_with_the_results_of_the_messages_taken_before_it(Type thrownType)
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1)).Then(Tx(2, rset: true)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var failure = (Exception)Activator.CreateInstance(thrownType, "the producer's own failure")!;

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(failure, Message(1), Message(2))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.InnerException.Should().BeSameAs(failure);
        thrown.Which.Message.Should().EndWith("the producer's own failure");
        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        thrown.Which.Results[1].FinalReply!.Text.Should().Contain("queued 2");
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_sequence_that_throws_before_its_first_message_has_no_results_and_writes_nothing()
    {
        var script = Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(new InvalidOperationException("no messages today"))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Should().BeEmpty();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written before NOOP (the script would fail otherwise)");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_synchronous_throw_from_MoveNextAsync_is_wrapped_too()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(new SyncThrowing(Message(1))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.InnerException.Should().BeOfType<FormatException>();
        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task In_a_BDAT_window_the_transactions_in_flight_are_finished_and_keep_their_outcomes()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"));
        foreach (var i in new[] { 1, 2 })
        {
            script.Then(i == 2 ? ["C: RSET"] : []).Then("C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>").ExpectRaw($"BDAT {Content(i).Length} LAST\r\n{Content(i)}");
        }

        script.Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 550 5.7.1 no 2");
        script.Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(new InvalidOperationException("stop"), Message(1), Message(2))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();

        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_lost_connection_before_the_final_reply_leaves_that_message_Unknown_with_the_reason()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1), firstAfterReply: false))
            .Then("DROP");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(new InvalidOperationException("stop"), Message(1))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();

        var first = thrown.Which.Results.Should().ContainSingle().Which;
        first.Outcome.Should().Be(SmtpSendOutcome.Unknown, "its end of data was written and no final reply came");
        first.Exception.Should().BeAssignableTo<SmtpException>();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streaming_yields_every_result_then_throws_the_sequences_exception_as_it_is()
    {
        // The sequence waits for each result before its next step, so the first message's replies are read before the
        // second is written (no RSET). It waited on Task.Yield only, which under a loaded CI machine had completed by
        // the time the session looked: the second message then went with RSET first, off the script, and the server
        // dropped the connection (the sequence, no longer taken from, never threw).
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1)).Then(Tx(2)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var failure = new InvalidOperationException("the producer's own failure");
        using var resultSeen = new SemaphoreSlim(0);

        async IAsyncEnumerable<SmtpMessage> Producer()
        {
            yield return Message(1);
            await resultSeen.WaitAsync();
            yield return Message(2);
            await resultSeen.WaitAsync();
            throw failure;
        }

        var yielded = new List<SmtpSendResult>();
        Exception? caught = null;
        try
        {
            await foreach (var result in session.SendBatchStreamingAsync(Producer()))
            {
                yielded.Add(result);
                resultSeen.Release();
            }
        }
        catch (Exception ex)
        {
            caught = ex;
        }

        caught.Should().BeSameAs(failure);
        yielded.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_cancellation_from_the_sequence_is_still_a_cancellation()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(new OperationCanceledException("the producer gave up"), Message(1))).Safe()).Should().ThrowAsync<SmtpBatchCanceledException>();

        thrown.Which.Results.Should().ContainSingle();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_endless_sequence_is_not_taken_from_after_the_connection_is_lost(bool streaming)
    {
        // The server takes message 1 and closes the connection: a sequence that never ends (a channel reader, a queue)
        // must not keep the call going to mark its messages NotSent one by one.
        // (A streaming call reads message 1's replies while the sequence waits, so message 2 needs no RSET.)
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1)).Then(streaming ? [] : ["C: RSET"]).Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m2@example.test>", "C: DATA", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var taken = 0;
        using var firstResultSeen = new SemaphoreSlim(0);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        async IAsyncEnumerable<SmtpMessage> Endless()
        {
            for (var i = 1; ; i++)
            {
                // Streaming: message 2 is taken only once message 1's result is out, so no RSET is due whatever the
                // timing (without the wait, message 2 sometimes came before message 1's replies were read: a RSET).
                if (streaming && i == 2)
                {
                    await firstResultSeen.WaitAsync(guard.Token);
                }

                await Task.Yield();
                taken++;
                yield return Message(i);
            }
        }

        // Without the rule the call went on for as long as the sequence did: here until this guard cancels it.
        var results = await SendSequenceAsync(session, Endless(), streaming, guard.Token, firstResultSeen);

        results[0].IsAccepted.Should().BeTrue();
        results.Skip(1).Should().OnlyContain(r => r.Outcome != SmtpSendOutcome.Accepted);
        results.Should().HaveCountLessThanOrEqualTo(3);
        taken.Should().Be(results.Count, "every message taken has its result, and none is taken after the loss");
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public void Constructor_checks_its_arguments()
    {
        var ex = new SmtpBatchSequenceException([], new InvalidOperationException("boom"));
        ex.Message.Should().EndWith("boom");
        FluentActions.Invoking(() => new SmtpBatchSequenceException(null!, new InvalidOperationException())).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("results");
        FluentActions.Invoking(() => new SmtpBatchSequenceException([], null!)).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("innerException");
    }

    private static async IAsyncEnumerable<SmtpMessage> Throwing(Exception failure, params SmtpMessage[] messages)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }

        await Task.Yield();
        throw failure;
    }

    /// <summary>A hand-written sequence whose MoveNextAsync throws synchronously after its first message.</summary>
    private sealed class SyncThrowing(SmtpMessage first) : IAsyncEnumerable<SmtpMessage>, IAsyncEnumerator<SmtpMessage>
    {
        private int _index = -1;

        public SmtpMessage Current => first;

        public IAsyncEnumerator<SmtpMessage> GetAsyncEnumerator(CancellationToken cancellationToken = default) => this;

        public ValueTask<bool> MoveNextAsync() => ++_index == 0 ? new(true) : throw new FormatException("a bad row");

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
