using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// With no AcquireTimeout, a message whose caller cancelled while it waited was completed as cancelled and counted out
/// of PendingRequests (and so of mailpipe.sender.pending_requests), but its entry, holding the message and its
/// content, stayed in the pool's queue until a batch took (and skipped) it: against a server that stopped answering,
/// a long-running service whose callers give up kept every one of their messages. It now leaves the queue at once
/// (an O(1) unlink, no scan), and the others keep their order.
/// </summary>
public sealed class SmtpSenderCancelledQueueEntryTests
{
    [Fact]
    public async Task Messages_cancelled_while_waiting_with_no_AcquireTimeout_leave_the_queue_at_once_and_the_rest_keep_their_order()
    {
        await using var server = new LoopbackSmtpServer();
        var greet = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.GreetingGate = greet.Task; // the server does not answer yet: the only connection stays opening
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 100);
        options.AcquireTimeout = Timeout.InfiniteTimeSpan;
        await using var sender = new SmtpSender(options);

        const int Count = 60;
        var messages = new (SmtpMessage Message, string MessageId)[Count];
        var tokens = new CancellationTokenSource[Count];
        var sends = new Task<SmtpSendResult>[Count];
        for (var i = 0; i < Count; i++)
        {
            messages[i] = PoolTestMessages.Create("queue", i, bodyBytes: 64);
            tokens[i] = new CancellationTokenSource();
            sends[i] = sender.SendAsync(messages[i].Message, tokens[i].Token);
        }

        sender.GetStatistics().PendingRequests.Should().Be(Count);
        sender.QueuedEntries.Should().Be(Count);

        // Every odd one gives up (in the middle of the queue, at its tail, and at its head: 1 is the oldest but one).
        for (var i = 1; i < Count; i += 2)
        {
            await tokens[i].CancelAsync();
        }

        for (var i = 1; i < Count; i += 2)
        {
            await FluentActions.Awaiting(() => sends[i]).Should().ThrowAsync<OperationCanceledException>();
        }

        sender.GetStatistics().PendingRequests.Should().Be(Count / 2);
        sender.QueuedEntries.Should().Be(Count / 2, "a cancelled message leaves the queue when it is cancelled, not when a batch reaches it");

        // The head too, and then all the rest: the queue is empty while the server still does not answer.
        await tokens[0].CancelAsync();
        await FluentActions.Awaiting(() => sends[0]).Should().ThrowAsync<OperationCanceledException>();
        sender.QueuedEntries.Should().Be((Count / 2) - 1);

        greet.SetResult();
        for (var i = 2; i < Count; i += 2)
        {
            (await sends[i].WaitAsync(ScriptedSmtpServer.SafetyTimeout)).IsAccepted.Should().BeTrue();
        }

        for (var i = 0; i < Count; i++)
        {
            server.CountOf(messages[i].MessageId).Should().Be(i % 2 == 0 && i > 0 ? 1 : 0, $"message {i}");
            tokens[i].Dispose();
        }

        // The waiting ones went out in the order they came.
        var order = server.Received.Select(m => m.MessageId).ToList();
        order.Should().Equal(Enumerable.Range(1, (Count / 2) - 1).Select(k => messages[2 * k].MessageId));
        sender.QueuedEntries.Should().Be(0);
        sender.GetStatistics().PendingRequests.Should().Be(0);
    }

    [Fact]
    public async Task Cancelling_every_waiting_message_empties_the_queue_while_the_server_does_not_answer()
    {
        await using var server = new LoopbackSmtpServer();
        var greet = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.GreetingGate = greet.Task;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.AcquireTimeout = Timeout.InfiniteTimeSpan;
        await using var sender = new SmtpSender(options);

        // Round after round of callers who give up: none of them may stay.
        for (var round = 0; round < 5; round++)
        {
            using var cts = new CancellationTokenSource();
            var sends = Enumerable.Range(0, 200).Select(i => sender.SendAsync(PoolTestMessages.Create("storm", i, bodyBytes: 64).Message, cts.Token)).ToList();
            await cts.CancelAsync();
            foreach (var send in sends)
            {
                await FluentActions.Awaiting(() => send).Should().ThrowAsync<OperationCanceledException>();
            }

            sender.GetStatistics().PendingRequests.Should().Be(0);
            sender.QueuedEntries.Should().Be(0, $"round {round}: every cancelled message left the queue");
        }

        greet.SetResult();
        server.Received.Should().BeEmpty();
    }
}
