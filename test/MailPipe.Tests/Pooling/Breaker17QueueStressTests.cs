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

    [Theory]
    [InlineData(1, 1, false)]
    [InlineData(3, 4, false)]
    [InlineData(2, 16, true)]
    public async Task Cancellations_at_random_points_racing_batches_and_the_acquire_timeout_complete_every_caller_once(int maxConnections, int maxBatchSize, bool shortAcquireTimeout)
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections, maxBatchSize);
        if (shortAcquireTimeout)
        {
            options.AcquireTimeout = TimeSpan.FromMilliseconds(1); // expiries at random points too
        }

        await using var sender = new SmtpSender(options);
        var random = new Random(maxConnections * 100 + maxBatchSize);
        for (var round = 0; round < 5; round++)
        {
            const int Count = 300;
            var messages = Enumerable.Range(0, Count).Select(i => PoolTestMessages.Create($"r{round}", i, bodyBytes: 32)).ToArray();
            var tokens = Enumerable.Range(0, Count).Select(_ => new CancellationTokenSource()).ToArray();
            var yields = Enumerable.Range(0, Count).Select(_ => random.Next(0, 40)).ToArray();
            var cancel = Enumerable.Range(0, Count).Select(_ => random.Next(3) != 0).ToArray();
            var sends = new Task<SmtpSendResult>[Count];
            var cancellers = new List<Task>();
            for (var i = 0; i < Count; i++)
            {
                sends[i] = sender.SendAsync(messages[i].Message, tokens[i].Token);
                if (cancel[i])
                {
                    var cts = tokens[i];
                    var n = yields[i];
                    cancellers.Add(Task.Run(async () =>
                    {
                        for (var k = 0; k < n; k++)
                        {
                            await Task.Yield();
                        }

                        await cts.CancelAsync();
                    }));
                }
            }

            await Task.WhenAll(cancellers).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            for (var i = 0; i < Count; i++)
            {
                var send = sends[i];
                await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().NotThrowAsync<TimeoutException>($"message {i} of round {round} completes");
                if (send.IsCompletedSuccessfully)
                {
                    var result = await send;
                    var copies = server.CountOf(messages[i].MessageId);
                    copies.Should().BeLessThanOrEqualTo(1, $"message {i} is never delivered twice");
                    if (result.Outcome != SmtpSendOutcome.Unknown)
                    {
                        copies.Should().Be(result.IsAccepted ? 1 : 0, $"message {i}: {result.Outcome}");
                    }
                }
                else
                {
                    (send.IsCanceled || send.Exception?.InnerException is OperationCanceledException).Should().BeTrue($"message {i} failed only by its cancellation: {send.Exception}");
                    cancel[i].Should().BeTrue();
                    if (send.Exception?.InnerException is not SmtpOutcomeUnknownException)
                    {
                        server.CountOf(messages[i].MessageId).Should().Be(0, $"message {i} was cancelled");
                    }
                    else
                    {
                        server.CountOf(messages[i].MessageId).Should().BeLessThanOrEqualTo(1, $"message {i}'s outcome is unknown");
                    }
                }
            }

            sender.QueuedEntries.Should().Be(0, $"round {round}");
            sender.GetStatistics().PendingRequests.Should().Be(0, $"round {round}");
            foreach (var cts in tokens)
            {
                cts.Dispose();
            }
        }
    }
}
