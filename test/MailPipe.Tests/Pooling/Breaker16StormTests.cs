using Xunit.Abstractions;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probes (session 16) of the shared sender under storms: 64 callers cancelling at random moments, sharing one
/// token source, some with tokens already cancelled, some refused, with DisposeAsync (twice, concurrently) racing them.
/// Every outcome a caller learns is checked against what the server stored. (Unobserved task exceptions were watched
/// too while this was written, run alone: none; the check is not kept, as the event is process-wide and other tests of
/// the assembly leave faulted Task.WhenAll tasks behind.)
/// </summary>
public sealed class Breaker16StormTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(true, 2, 4, 0, false)]
    [InlineData(false, 2, 4, 0, false)]
    [InlineData(true, 1, 1, 1, false)]
    [InlineData(false, 1, 1, 1, false)]
    [InlineData(true, 2, 16, 3, true)]
    [InlineData(false, 2, 16, 3, true)]
    [InlineData(true, 1, 64, 0, true)]
    public async Task A_cancellation_storm_never_hangs_nor_lies(bool chunking, int maxConnections, int maxBatchSize, int maxMessagesPerConnection, bool dispose)
    {
        for (var round = 0; round < 8; round++)
        {
            await RunRoundAsync(chunking, maxConnections, maxBatchSize, maxMessagesPerConnection, dispose, new Random(round * 31 + maxBatchSize));
        }
    }

    private async Task RunRoundAsync(bool chunking, int maxConnections, int maxBatchSize, int maxMessagesPerConnection, bool dispose, Random random)
    {
        await using var server = new LoopbackSmtpServer(chunking);
        var options = PoolTestMessages.Options(server.Port, maxConnections, maxBatchSize);
        options.MaxMessagesPerConnection = maxMessagesPerConnection;
        options.DisposeTimeout = TimeSpan.FromMilliseconds(random.Next(1, 50));
        var sender = new SmtpSender(options);
        using var shared = new CancellationTokenSource();
        var own = new List<CancellationTokenSource>();
        var messages = new List<(SmtpMessage Message, string MessageId)>();
        var tasks = new List<Task<SmtpSendResult>>();
        var modes = new List<int>();
        for (var i = 0; i < 64; i++)
        {
            var m = PoolTestMessages.Create("storm", i, bodyBytes: random.Next(4) == 0 ? 200_000 : 512);
            if (random.Next(8) == 0)
            {
                m = (SmtpMessage.FromSequence(new SmtpEnvelope("sender@example.test", $"unknown-{i}@example.test"), m.Message.Bytes!.Value), m.MessageId);
            }

            var mode = random.Next(5);
            CancellationToken token;
            switch (mode)
            {
                case 1:
                    token = shared.Token;
                    break;
                case 2:
                    token = new CancellationToken(true);
                    break;
                case 3:
                    var cts = new CancellationTokenSource();
                    own.Add(cts);
                    cts.CancelAfter(random.Next(0, 15));
                    token = cts.Token;
                    break;
                default:
                    token = default;
                    break;
            }

            messages.Add(m);
            modes.Add(mode);
            tasks.Add(sender.SendAsync(m.Message, token));
        }

        shared.CancelAfter(random.Next(0, 15));
        Task? disposal = null;
        if (dispose)
        {
            await Task.Delay(random.Next(0, 15));
            var first = sender.DisposeAsync().AsTask();
            var second = Task.Run(() => sender.DisposeAsync().AsTask());
            disposal = Task.WhenAll(first, second);
            await FluentActions.Invoking(() => sender.SendAsync(messages[0].Message)).Should().ThrowAsync<ObjectDisposedException>();
        }

        var all = Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => 0, TaskScheduler.Default)));
        (await Task.WhenAny(all, Task.Delay(Limit)) == all).Should().BeTrue("every caller completes");
        var statistics = sender.GetStatistics();
        if (disposal is not null)
        {
            (await Task.WhenAny(disposal, Task.Delay(Limit)) == disposal).Should().BeTrue("the disposal completes");
        }
        else
        {
            // The callers learn their results before their connection is released: wait for the pool to settle.
            var deadline = DateTime.UtcNow + Limit;
            while ((statistics = sender.GetStatistics()) is { InUse: > 0 } or { Opening: > 0 } && DateTime.UtcNow < deadline)
            {
                await Task.Delay(10);
            }

            statistics.PendingRequests.Should().Be(0);
            statistics.InUse.Should().Be(0, statistics.ToString());
            statistics.Opening.Should().Be(0);
            await sender.DisposeAsync();
        }

        await server.WaitUntilAsync(s => s.Connections > 0 || tasks.All(t => !t.IsCompletedSuccessfully), 5);
        await Task.Delay(100); // the server stores what the closed connections brought

        for (var i = 0; i < tasks.Count; i++)
        {
            var copies = server.CountOf(messages[i].MessageId);
            var task = tasks[i];
            var what = $"message {i} (mode {modes[i]}, {task.Status}): ";
            if (modes[i] == 2)
            {
                task.IsCanceled.Should().BeTrue(what + "its token was cancelled before SendAsync");
            }

            if (task.IsCompletedSuccessfully)
            {
                var result = task.Result;
                what += result.ToString();
                switch (result.Outcome)
                {
                    case SmtpSendOutcome.Accepted:
                        copies.Should().Be(1, what);
                        break;
                    case SmtpSendOutcome.Unknown:
                        copies.Should().BeLessThanOrEqualTo(1, what);
                        break;
                    default:
                        copies.Should().Be(0, what);
                        break;
                }

                if (!messages[i].Message.Envelope.Recipients[0].Address.StartsWith("unknown", StringComparison.Ordinal) && !dispose && modes[i] == 0)
                {
                    result.Outcome.Should().Be(SmtpSendOutcome.Accepted, what + " (no cancellation, no disposal)");
                }
            }
            else
            {
                var ex = task.Exception?.InnerException ?? new TaskCanceledException(task);
                what += ex.GetType().Name + ": " + ex.Message;
                switch (ex)
                {
                    case SmtpOutcomeUnknownException:
                        copies.Should().BeLessThanOrEqualTo(1, what);
                        break;
                    case OperationCanceledException or ObjectDisposedException:
                        copies.Should().Be(0, what);
                        (modes[i] != 0 || ex is ObjectDisposedException).Should().BeTrue(what + ": cancelled without a token");
                        break;
                    default:
                        throw new InvalidOperationException(what, ex);
                }
            }
        }

        server.Received.Where(r => !messages.Any(m => m.MessageId == r.MessageId)).Should().BeEmpty();
        server.Received.GroupBy(r => r.MessageId).Where(g => g.Count() > 1).Should().BeEmpty("nothing is delivered twice");
        output.WriteLine($"{statistics}; received {server.Received.Count}");
        foreach (var cts in own)
        {
            cts.Dispose();
        }
    }
}
