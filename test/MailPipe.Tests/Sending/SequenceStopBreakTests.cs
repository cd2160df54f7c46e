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
    [InlineData("CLOSE")]
    [InlineData("S: 421 4.4.2 closing")]
    public async Task A_streaming_producer_that_waits_for_the_results_gets_them_when_the_connection_is_lost_meanwhile(string end)
    {
        // Message 1's end of data is written; the sequence then waits for message 1's result (the documented case of a
        // producer fed by the results). The server closes the connection (or says 421) instead of the final reply.
        var script = Script(Ehlo("PIPELINING")).Then(Head(1)).Then(end == "CLOSE" ? ["CLOSE"] : [end, "CLOSE"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var taken = new StrongBox<int>();
        var gaveUp = new StrongBox<bool>();

        var results = new List<SmtpSendResult>();
        await foreach (var result in session.SendBatchStreamingAsync(WaitingForFirstResult(first.Task, TimeSpan.FromSeconds(5), taken, gaveUp)))
        {
            results.Add(result);
            first.TrySetResult();
        }

        gaveUp.Value.Should().BeFalse("message 1's result can no longer change once the replies stopped: a producer waiting for it must not wait in vain");
        results.Should().HaveCount(taken.Value);
        results[0].Outcome.Should().Be(end == "CLOSE" ? SmtpSendOutcome.Unknown : SmtpSendOutcome.Refused);
        results.Skip(1).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("CLOSE")]
    [InlineData("S: 421 4.4.2 closing")]
    public async Task With_CHUNKING_a_streaming_producer_that_waits_for_the_results_gets_them_when_the_connection_is_lost_meanwhile(string end)
    {
        // The same with a BDAT window: the replies due are read concurrently while the sequence waits.
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok")
            .Then(end == "CLOSE" ? ["CLOSE"] : [end, "CLOSE"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var taken = new StrongBox<int>();
        var gaveUp = new StrongBox<bool>();

        var results = new List<SmtpSendResult>();
        await foreach (var result in session.SendBatchStreamingAsync(WaitingForFirstResult(first.Task, TimeSpan.FromSeconds(5), taken, gaveUp)))
        {
            results.Add(result);
            first.TrySetResult();
        }

        gaveUp.Value.Should().BeFalse("message 1's result can no longer change once the replies stopped");
        results.Should().HaveCount(taken.Value);
        results[0].Outcome.Should().Be(end == "CLOSE" ? SmtpSendOutcome.Unknown : SmtpSendOutcome.Refused);
        results.Skip(1).Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.NotSent);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }
}
