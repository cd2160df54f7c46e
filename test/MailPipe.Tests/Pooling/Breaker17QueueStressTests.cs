using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Stress of the pool's waiting-message queue (RequestQueue, an intrusive list unlinked on cancellation) against the
/// other ways a waiting message leaves it: disposal draining it, batches taking it. Every caller completes exactly once,
/// the queue ends empty and the count of waiting messages (PendingRequests) ends at 0, never below.
/// </summary>
public sealed class Breaker17QueueStressTests
{
    [Fact]
    public async Task Cancellations_racing_the_disposal_complete_every_caller_once_and_leave_no_negative_count()
    {
        for (var round = 0; round < 400; round++)
        {
            await using var server = new LoopbackSmtpServer();
            var greet = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            server.GreetingGate = greet.Task; // the only connection stays opening: every message waits
            var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
            options.AcquireTimeout = Timeout.InfiniteTimeSpan;
            var sender = new SmtpSender(options);

            const int Count = 100;
            var tokens = Enumerable.Range(0, Count).Select(_ => new CancellationTokenSource()).ToArray();
            var sends = Enumerable.Range(0, Count).Select(i => sender.SendAsync(PoolTestMessages.Create("race", i, bodyBytes: 16).Message, tokens[i].Token)).ToArray();

            using var go = new ManualResetEventSlim();
            var cancelling = Task.Run(() =>
            {
                go.Wait();
                foreach (var cts in tokens)
                {
                    cts.Cancel();
                }
            });
            var disposing = Task.Run(() =>
            {
                go.Wait();
                sender.Dispose();
            });
            go.Set();
            await Task.WhenAll(cancelling, disposing).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

            foreach (var send in sends)
            {
                var ended = await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().ThrowAsync<Exception>();
                ended.Which.Should().Match(e => e is OperationCanceledException || e is ObjectDisposedException);
            }

            sender.QueuedEntries.Should().Be(0, $"round {round}");
            sender.GetStatistics().PendingRequests.Should().Be(0, $"round {round}: no message waits, and the count is never below 0");
            greet.SetResult();
            await sender.DisposeAsync();
            foreach (var cts in tokens)
            {
                cts.Dispose();
            }
        }
    }
}
