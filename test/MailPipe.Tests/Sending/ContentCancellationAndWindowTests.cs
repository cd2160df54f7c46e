using MailPipe.Tests.Pooling;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The session side of issue #10: a message's own token (SmtpMessage.WithCancellation) while its content is being
/// written (BDAT: RSET between chunks, connection kept; DATA: connection closed, never the final dot), and the window
/// of a streaming CHUNKING batch kept open while its sequence waits.
/// </summary>
public sealed class ContentCancellationAndWindowTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The sequence waits after message 1 until the server has all of it; the server answers nothing until it has
    /// message 2 too. Reading every reply due before asking the sequence again (the window drained) would wait forever.
    /// </summary>
    [Fact]
    public async Task Streaming_with_CHUNKING_writes_the_next_message_as_soon_as_the_sequence_has_it_without_waiting_for_the_replies_due()
    {
        var firstReceived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Signal(firstReceived)
            .Then("C: RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        List<SmtpSendResult> results = [];
        await foreach (var result in session.SendBatchStreamingAsync(Source()).WithCancellation(CancellationToken.None))
        {
            results.Add(result);
        }

        results.Select(r => r.FinalReply!.Text).Should().Equal("queued 1", "queued 2");
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        await server.WaitAsync();

        async IAsyncEnumerable<SmtpMessage> Source()
        {
            yield return Message(1);
            await firstReceived.Task;
            yield return Message(2);
        }
    }

    [Fact]
    public async Task With_BDAT_a_message_cancelled_in_its_content_is_reset_between_chunks_and_the_batch_goes_on_on_the_same_connection()
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        using var session = await ConnectedAsync(server);
        var (first, firstId) = PoolTestMessages.Create("session-bdat-cut", 1);
        var (third, thirdId) = PoolTestMessages.Create("session-bdat-cut", 3);
        var (gated, gatedId, content) = GatedContentStream.Create("session-bdat-cut-2");
        using var cts = new CancellationTokenSource();

        var batch = session.SendBatchAsync([first, gated.WithCancellation(cts.Token), third]);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.CommandsOf(1).SkipWhile(l => !l.Contains("session-bdat-cut-2", StringComparison.Ordinal)).Count(l => l.StartsWith("BDAT", StringComparison.Ordinal)) >= 2);
        await cts.CancelAsync();
        var results = await batch.WaitAsync(Limit);

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeAssignableTo<OperationCanceledException>().Which.CancellationToken.Should().Be(cts.Token);
        results[1].IsTransientFailure.Should().BeFalse();
        session.IsConnected.Should().BeTrue("the transaction was reset, the connection kept");
        server.CountOf(firstId).Should().Be(1);
        server.CountOf(thirdId).Should().Be(1);
        server.CountOf(gatedId).Should().Be(0);
        var gatedCommands = server.CommandsOf(1).SkipWhile(l => !l.Contains("session-bdat-cut-2", StringComparison.Ordinal)).TakeWhile(l => !l.StartsWith("MAIL", StringComparison.Ordinal)).ToList();
        gatedCommands.Should().Contain(l => l.StartsWith("BDAT 1024", StringComparison.Ordinal) && !l.EndsWith("LAST", StringComparison.Ordinal));
        gatedCommands.Should().NotContain(l => l.EndsWith("LAST", StringComparison.Ordinal));
        gatedCommands.Last().Should().Be("RSET");
        server.EndedInContent.Should().Be(0);
    }

    [Fact]
    public async Task With_DATA_a_message_cancelled_in_its_content_closes_the_connection_without_the_final_dot_and_the_rest_is_NotSent_transient()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        using var session = await ConnectedAsync(server);
        var (first, firstId) = PoolTestMessages.Create("session-data-cut", 1);
        var (third, thirdId) = PoolTestMessages.Create("session-data-cut", 3);
        var (gated, gatedId, content) = GatedContentStream.Create("session-data-cut-2");
        using var cts = new CancellationTokenSource();

        var batch = session.SendBatchAsync([first, gated.WithCancellation(cts.Token), third]);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.Received.Count == 1 && s.ContentBytes >= s.Received.Sum(m => m.Data.Length) + 4096);
        await cts.CancelAsync();
        var results = await batch.WaitAsync(Limit);

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent);
        results[1].Exception.Should().BeAssignableTo<OperationCanceledException>().Which.CancellationToken.Should().Be(cts.Token);
        results[2].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        results[2].IsTransientFailure.Should().BeTrue("it was never written: another connection may send it");
        session.IsConnected.Should().BeFalse();
        await server.WaitUntilAsync(s => s.EndedInContent == 1);
        server.EndedInContent.Should().Be(1, "the connection closed in the middle of the content: no final dot");
        server.CountOf(firstId).Should().Be(1);
        server.CountOf(gatedId).Should().Be(0);
        server.CountOf(thirdId).Should().Be(0);
        server.CommandsOf(1).Count(l => l.StartsWith("MAIL", StringComparison.Ordinal)).Should().Be(2);
    }

    /// <summary>A single SendAsync whose message's own token fires in its content: NotSent (not thrown), RSET, the session usable.</summary>
    [Fact]
    public async Task SendAsync_with_BDAT_of_a_message_cancelled_in_its_content_returns_NotSent_and_keeps_the_session()
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        using var session = await ConnectedAsync(server);
        var (gated, gatedId, content) = GatedContentStream.Create("session-single-cut");
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(gated.WithCancellation(cts.Token));
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.CommandsOf(1).Count(l => l.StartsWith("BDAT", StringComparison.Ordinal)) >= 2);
        await cts.CancelAsync();
        var result = await send.WaitAsync(Limit);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<OperationCanceledException>();
        (await session.SendAsync(PoolTestMessages.Create("session-single-next", 0).Message).WaitAsync(Limit)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(gatedId).Should().Be(0);
        var commands = server.CommandsOf(1).ToList();
        commands.Should().Contain("RSET");
        commands.Take(commands.IndexOf("RSET")).Should().NotContain(l => l.EndsWith("LAST", StringComparison.Ordinal), "the cancelled message is never ended");
        server.Connections.Should().Be(1);
    }

    private static async Task<AsyncSmtpSession> ConnectedAsync(LoopbackSmtpServer server)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { ChunkSize = 1024, DataFlushThreshold = 1024 });
        await session.ConnectAsync("127.0.0.1", server.Port).WaitAsync(Limit);
        (await session.EhloAsync("client.example.test").WaitAsync(Limit)).Code.Should().Be(250);
        return session;
    }
}
