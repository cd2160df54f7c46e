using System.Runtime.CompilerServices;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Breaker probes of commit 2d645fd: once the connection is lost or closing, the caller's async sequence is not taken
/// from any more; every message taken has its result, in order, and none is taken after the loss.
/// </summary>
public class SequenceStopBreakTests
{
    private static string[] Head(int i, bool rset = false) =>
        [.. rset ? ["C: RSET"] : Array.Empty<string>(), "C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>", "C: DATA", .. rset ? ["S: 250 ok"] : Array.Empty<string>(), "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false)];

    private static string[] Tx(int i, bool rset = false) => [.. Head(i, rset), "S: 250 2.0.0 queued " + i];

    /// <summary>Yields message 1, then waits (as a producer fed by the results would) until the caller has its result, or <paramref name="patience"/>.</summary>
    private static async IAsyncEnumerable<SmtpMessage> WaitingForFirstResult(Task firstResult, TimeSpan patience, StrongBox<int> taken, StrongBox<bool> gaveUp)
    {
        taken.Value++;
        yield return Message(1);
        if (await Task.WhenAny(firstResult, Task.Delay(patience)) != firstResult)
        {
            gaveUp.Value = true;
            yield break;
        }

        taken.Value++;
        yield return Message(2);
    }

    [Theory]
    [InlineData("CLOSE", false)]
    [InlineData("S: 421 4.4.2 closing", false)]
    [InlineData("CLOSE", true)]
    [InlineData("S: 421 4.4.2 closing", true)]
    public async Task A_streaming_producer_that_waits_for_the_results_gets_them_when_the_connection_is_lost_meanwhile(string end, bool chunking)
    {
        // Message 1's end of data is written; the sequence then waits for message 1's result (the documented case of a
        // producer fed by the results). The server closes the connection (or says 421) instead of the final reply.
        // With CHUNKING the replies due are read concurrently while the sequence waits (a BDAT window).
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
                .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 ok")
            : Script(Ehlo("PIPELINING")).Then(Head(1));
        script.Then(end == "CLOSE" ? ["CLOSE"] : [end, "CLOSE"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var taken = new StrongBox<int>();
        var gaveUp = new StrongBox<bool>();

        var results = new List<SmtpSendResult>();
        await foreach (var result in session.SendBatchStreamingAsync(WaitingForFirstResult(first.Task, TimeSpan.FromSeconds(30), taken, gaveUp)))
        {
            results.Add(result);
            first.TrySetResult();
        }

        gaveUp.Value.Should().BeFalse("message 1's result can no longer change once the replies stopped: a producer waiting for it must not wait in vain");
        results.Should().HaveCount(taken.Value);
        results[0].Outcome.Should().Be(end == "CLOSE" ? SmtpSendOutcome.Unknown : SmtpSendOutcome.Refused);
        results.Skip(1).Where(r => r.Outcome != SmtpSendOutcome.NotSent).Should().BeEmpty();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_content_read_failure_inside_DATA_ends_the_taking_every_message_taken_has_its_result_in_order(bool streaming)
    {
        // Message 2's content stream fails inside DATA: the connection must be closed (never the final dot), and an
        // endless sequence is not taken from any more.
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1))
            .Then(streaming ? [] : ["C: RSET"])
            .Then("C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m2@example.test>", "C: DATA")
            .Then(streaming ? [] : ["S: 250 reset"])
            .Then("S: 250 ok", "S: 250 ok", "S: 354 go")
            .ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024 });
        var taken = 0;
        using var firstResultSeen = new SemaphoreSlim(0);
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        async IAsyncEnumerable<SmtpMessage> Endless()
        {
            taken++;
            yield return Message(1);

            // Streaming: message 2 comes only once message 1's result is out, so no RSET is due whatever the timing
            // (a fixed 20 ms delay here let a loaded machine take message 2 before message 1's replies were read).
            if (streaming)
            {
                await firstResultSeen.WaitAsync(guard.Token);
            }

            taken++;
            yield return SmtpMessage.FromStream(Envelope("m2@example.test"), new FailingStream(Ascii(Lines(40, 50))));
            for (var i = 3; ; i++)
            {
                await Task.Yield();
                taken++;
                yield return Message(i);
            }
        }

        var results = await SendSequenceAsync(session, Endless(), streaming, guard.Token, firstResultSeen);

        results.Should().HaveCount(taken);
        results.Select(r => r.Envelope.Recipients[0].Address).Should().Equal(results.Select((_, i) => $"m{i + 1}@example.test"), "in message order");
        results[0].Outcome.Should().Be(SmtpSendOutcome.Accepted);
        results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        results.Skip(2).Where(r => r.Outcome != SmtpSendOutcome.NotSent).Should().BeEmpty();
        taken.Should().BeLessThanOrEqualTo(3);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_result_refused_with_421_comes_out_only_once_the_session_knows_the_connection_is_closing(bool chunking)
    {
        // The pooled sender retries a 421-refused message only when the session is no longer connected when it sees
        // the result (and records why the connection is discarded): the result must not come out before that.
        for (var round = 0; round < 10; round++)
        {
            var script = chunking
                ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
                    .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
                    .Then("S: 250 ok", "S: 250 ok", "S: 421 4.4.2 closing", "CLOSE")
                : Script(Ehlo("PIPELINING")).Then(Head(1)).Then("S: 421 4.4.2 closing", "CLOSE");
            await using var server = ScriptedSmtpServer.Start(script);
            using var session = await ConnectedAsync(server);
            var connectedAtResult = new List<bool>();
            var resultOut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await foreach (var result in session.SendBatchStreamingAsync(EndingAfter(resultOut.Task, Message(1))))
            {
                connectedAtResult.Add(session.IsConnected);
                resultOut.TrySetResult();
                result.Outcome.Should().Be(SmtpSendOutcome.Refused);
                result.FinalReply!.Code.Should().Be(421);
            }

            connectedAtResult.Should().Equal([false], $"round {round}");
            await server.WaitAsync();
        }
    }

    /// <summary>
    /// Yields <paramref name="message"/>, then ends only once its result is out, so that the result always comes from the
    /// replies the streaming call reads while the sequence waits (a 20 ms delay here left that to timing: a loaded
    /// machine could find the sequence ended already and read the replies at the end of the call instead).
    /// </summary>
    private static async IAsyncEnumerable<SmtpMessage> EndingAfter(Task resultOut, SmtpMessage message)
    {
        yield return message;
        await resultOut.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
    }
}
