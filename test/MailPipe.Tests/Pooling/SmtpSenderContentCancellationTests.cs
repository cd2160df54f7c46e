using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Acceptance 3 of issue #10, the rule for a caller cancelled while its own content is being written: with BDAT the
/// transaction is reset with RSET between chunks and the connection kept; with DATA the connection is closed (never the
/// final dot) and the callers not yet written go to another connection. Checked against what the server received.
/// </summary>
public sealed class SmtpSenderContentCancellationTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task With_BDAT_a_caller_cancelled_in_its_content_is_reset_with_RSET_between_chunks_and_the_others_on_the_connection_are_untouched()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: true) { GreetingGate = greeting.Task };
        await using var sender = new SmtpSender(SmallChunkOptions(server.Port));
        var before = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("bdat-cut-before", i)).ToArray();
        var after = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("bdat-cut-after", i)).ToArray();
        var (gated, gatedId, content) = GatedContentStream.Create("bdat-cut");
        using var cts = new CancellationTokenSource();

        // One batch, in this order: three messages, the gated one, three more.
        var beforeTasks = before.Select(m => sender.SendAsync(m.Message)).ToArray();
        var cancelled = sender.SendAsync(gated, cts.Token);
        var afterTasks = after.Select(m => sender.SendAsync(m.Message)).ToArray();
        greeting.SetResult(); // every caller waits: the connection takes them all into one batch
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => CommandsAfterMail(s, 1, 4).Count(IsChunk) >= 2);
        await cts.CancelAsync();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        var results = await Task.WhenAll(beforeTasks.Concat(afterTasks)).WaitAsync(Limit);

        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        before.Concat(after).Should().OnlyContain(m => server.CountOf(m.MessageId) == 1);
        server.CountOf(gatedId).Should().Be(0);

        // The gated transaction on the wire: MAIL, RCPT, chunks without LAST, then RSET; the next one follows on the same connection.
        var gatedCommands = CommandsAfterMail(server, 1, 4).TakeWhile(l => !l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).ToList();
        gatedCommands.Should().Contain(l => IsChunk(l) && !IsLastChunk(l));
        gatedCommands.Should().NotContain(l => IsLastChunk(l), "the cancelled message is never ended");
        gatedCommands.Last().Should().Be("RSET");
        gatedCommands.FindIndex(IsChunk).Should().BeLessThan(gatedCommands.IndexOf("RSET"));
        server.CommandsOf(1).Count(l => l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().Be(7);

        // The connection was kept, and serves the next caller.
        server.EndedInContent.Should().Be(0);
        var next = await sender.SendAsync(PoolTestMessages.Create("bdat-cut-next", 0).Message).WaitAsync(Limit);
        next.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.Connections.Should().Be(1);
        var statistics = sender.GetStatistics();
        statistics.Discarded.Should().Be(0);
        statistics.Retries.Should().Be(0);
    }

    [Fact]
    public async Task With_BDAT_a_ForConnection_message_cancelled_in_its_content_is_reset_and_the_connection_kept()
    {
        // The message a selector chose (every MailPipe.MimeKit message through the pool) goes with the caller's token:
        // it was sent without it, and the pool then closed the connection instead of resetting the transaction.
        await using var server = new LoopbackSmtpServer(chunking: true);
        await using var sender = new SmtpSender(SmallChunkOptions(server.Port));
        var (gated, gatedId, content) = GatedContentStream.Create("bdat-selected-cut");
        using var cts = new CancellationTokenSource();

        var cancelled = sender.SendAsync(SmtpMessage.ForConnection(gated.Envelope, _ => gated), cts.Token);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => CommandsAfterMail(s, 1, 1).Count(IsChunk) >= 2);
        await cts.CancelAsync();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        var next = await sender.SendAsync(PoolTestMessages.Create("bdat-selected-next", 0).Message).WaitAsync(Limit);

        next.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(gatedId).Should().Be(0);
        CommandsAfterMail(server, 1, 1).TakeWhile(l => !l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().Contain("RSET");
        server.Connections.Should().Be(1, "the connection was kept");
        sender.GetStatistics().Discarded.Should().Be(0);
    }

    [Fact]
    public async Task With_BDAT_a_caller_alone_on_its_connection_cancelled_in_its_content_is_reset_and_the_connection_kept()
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        await using var sender = new SmtpSender(SmallChunkOptions(server.Port));
        var (gated, gatedId, content) = GatedContentStream.Create("bdat-alone-cut");
        using var cts = new CancellationTokenSource();

        var cancelled = sender.SendAsync(gated, cts.Token);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => CommandsAfterMail(s, 1, 1).Count(IsChunk) >= 2);
        await cts.CancelAsync();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        var next = await sender.SendAsync(PoolTestMessages.Create("bdat-alone-next", 0).Message).WaitAsync(Limit);

        next.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(gatedId).Should().Be(0);
        var commands = CommandsAfterMail(server, 1, 1).TakeWhile(l => !l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).ToList();
        commands.Should().NotContain(l => IsLastChunk(l));
        commands.Should().Contain("RSET");
        server.Connections.Should().Be(1, "the connection was kept");
        server.EndedInContent.Should().Be(0);
        sender.GetStatistics().Discarded.Should().Be(0);
    }

    [Fact]
    public async Task With_DATA_a_caller_cancelled_in_its_content_closes_the_connection_without_the_final_dot_and_the_callers_not_written_go_to_another()
    {
        var greeting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new LoopbackSmtpServer(chunking: false) { GreetingGate = greeting.Task };
        using var logs = new ListLoggerProvider();
        var options = SmallChunkOptions(server.Port);
        options.LoggerFactory = logs;
        await using var sender = new SmtpSender(options);
        var before = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("data-cut-before", i)).ToArray();
        var after = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("data-cut-after", i)).ToArray();
        var (gated, gatedId, content) = GatedContentStream.Create("data-cut");
        using var cts = new CancellationTokenSource();

        var beforeTasks = before.Select(m => sender.SendAsync(m.Message)).ToArray();
        var cancelled = sender.SendAsync(gated, cts.Token);
        var afterTasks = after.Select(m => sender.SendAsync(m.Message)).ToArray();
        greeting.SetResult(); // every caller waits: the connection takes them all into one batch
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.Received.Count == 3 && s.ContentBytes >= s.Received.Sum(m => m.Data.Length) + 4096);
        await cts.CancelAsync();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        var beforeResults = await Task.WhenAll(beforeTasks).WaitAsync(Limit);
        var afterResults = await Task.WhenAll(afterTasks).WaitAsync(Limit);

        // The callers before it were decided before its content started (each DATA waits for its 354, which comes
        // after the previous final reply): Accepted on the first connection. None was left with its end of data
        // written and no reply, so none is Unknown.
        beforeResults.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        before.Should().OnlyContain(m => server.Received.Single(r => r.MessageId == m.MessageId).Connection == 1);

        // The callers after it were never written there: sent once on a fresh connection.
        afterResults.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted);
        after.Should().OnlyContain(m => server.Received.Single(r => r.MessageId == m.MessageId).Connection == 2);
        server.CommandsOf(1).Count(l => l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().Be(4, "nothing after the cancelled message went out on the first connection");

        // The cancelled message: its content was cut off before the final dot, the connection closed under it.
        server.CountOf(gatedId).Should().Be(0);
        await server.WaitUntilAsync(s => s.EndedInContent > 0); // the server sees the first connection end on its own thread
        server.EndedInContent.Should().Be(1);
        server.Connections.Should().Be(2);
        var statistics = sender.GetStatistics();
        statistics.Retries.Should().Be(0, "the first connection's batch stopped taking messages when its connection was closed: the three went to the second connection as first attempts");
        statistics.Discarded.Should().Be(1);
        logs.Entries.Should().NotContain(e => e.EventId.Id == MailPipeEventId.PoolConnectionLost, "the caller closed it, it was not lost");
    }

    [Fact]
    public async Task With_DATA_a_caller_alone_on_its_connection_cancelled_in_its_content_never_sends_the_final_dot()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        await using var sender = new SmtpSender(SmallChunkOptions(server.Port));
        var (gated, gatedId, content) = GatedContentStream.Create("data-alone-cut");
        using var cts = new CancellationTokenSource();

        var cancelled = sender.SendAsync(gated, cts.Token);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => s.ContentBytes >= 4096);
        await cts.CancelAsync();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        await server.WaitUntilAsync(s => s.EndedInContent == 1);
        server.EndedInContent.Should().Be(1);
        server.CountOf(gatedId).Should().Be(0);
        server.Received.Should().BeEmpty();
    }

    /// <summary>A source that ignores the token: the cancellation is seen at the next chunk boundary, still before BDAT LAST.</summary>
    [Fact]
    public async Task With_BDAT_a_source_that_ignores_the_token_is_reset_at_the_next_chunk_boundary()
    {
        await using var server = new LoopbackSmtpServer(chunking: true);
        await using var sender = new SmtpSender(SmallChunkOptions(server.Port));
        var (gated, gatedId, content) = GatedContentStream.Create("bdat-deaf-cut", honoursToken: false);
        using var cts = new CancellationTokenSource();

        var cancelled = sender.SendAsync(gated, cts.Token);
        await content.HeadRead.WaitAsync(Limit);
        await server.WaitUntilAsync(s => CommandsAfterMail(s, 1, 1).Count(IsChunk) >= 2);
        await cts.CancelAsync();
        content.Open();

        await cancelled.Awaiting(t => t.WaitAsync(Limit)).Should().ThrowAsync<OperationCanceledException>();
        var next = await sender.SendAsync(PoolTestMessages.Create("bdat-deaf-next", 0).Message).WaitAsync(Limit);

        next.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(gatedId).Should().Be(0);
        CommandsAfterMail(server, 1, 1).TakeWhile(l => !l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().NotContain(l => IsLastChunk(l)).And.Contain("RSET");
        server.Connections.Should().Be(1);
    }

    /// <summary>1 KiB chunks and flushes, so that a message of 16 KiB is on the wire in pieces while its source waits.</summary>
    private static SmtpSenderOptions SmallChunkOptions(int port)
    {
        var options = PoolTestMessages.Options(port, maxConnections: 1, maxBatchSize: 32);
        options.Session = new SmtpSessionOptions { ChunkSize = 1024, DataFlushThreshold = 1024 };
        return options;
    }

    /// <summary>The command lines of a connection from its <paramref name="n"/>th MAIL (1-based) on, that MAIL excluded.</summary>
    private static List<string> CommandsAfterMail(LoopbackSmtpServer server, int connection, int n)
    {
        var mails = 0;
        return [.. server.CommandsOf(connection).SkipWhile(l => !(l.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) && ++mails == n)).Skip(1)];
    }

    private static bool IsChunk(string line) => line.StartsWith("BDAT", StringComparison.OrdinalIgnoreCase);

    private static bool IsLastChunk(string line) => IsChunk(line) && line.EndsWith("LAST", StringComparison.OrdinalIgnoreCase);
}
