using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A server at its per-client connection limit greets each connection over it with 421. While another connection
/// works, the pool waits before its next connect: 1 s, then 2, 4, … up to 30 s for failures in a row, and 1 s again
/// once a connect succeeded. Before, it tried again every second for as long as messages waited, and only when some
/// other event (a new message, a result) looked at the pool: behind one long message the waiting ones got no new
/// connection at all until their acquire timeout.
/// </summary>
public sealed class SmtpSenderOpenBackoffTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(50); // the pool's housekeeping period

    [Fact]
    public async Task Connects_refused_while_a_connection_works_are_tried_again_after_1_2_4_s_and_after_1_s_once_one_opened()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var attempts = Channel.CreateUnbounded<TaskCompletionSource<bool>>();
        var refused = new List<ScriptedSmtpServer>();
        var connects = 0;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 3, maxBatchSize: 1);
        options.AcquireTimeout = Timeout.InfiniteTimeSpan;
        options.TimeProvider = time;
        options.Timeouts = SmtpTimeouts.Rfc5321;
        options.ConnectStream = async token =>
        {
            if (Interlocked.Increment(ref connects) > 1)
            {
                // Every later connect waits for the test to say how it ends: true, the server's 421; false, it opens.
                var outcome = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
                attempts.Writer.TryWrite(outcome);
                if (await outcome.Task.WaitAsync(token))
                {
                    var over = ScriptedSmtpServer.Start("S: 421 limit.test Too many connections from your host", "CLOSE");
                    lock (refused)
                    {
                        refused.Add(over);
                    }

                    return over.ClientStream;
                }
            }

            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, server.Port, token);
            return client.GetStream();
        };

        try
        {
            await using var sender = new SmtpSender(options);
            var first = GatedContentStream.Create("backoff-a");
            var second = GatedContentStream.Create("backoff-b");
            try
            {
                var sends = new List<Task<SmtpSendResult>> { sender.SendAsync(first.Message) };
                await first.Stream.HeadRead.WaitAsync(ScriptedSmtpServer.SafetyTimeout); // connection 1 is in the middle of a long message

                var messages = Enumerable.Range(0, 2).Select(i => PoolTestMessages.Create("backoff", i)).ToList();
                sends.AddRange(messages.Select(m => sender.SendAsync(m.Message)));
                await RefuseNextAsync(attempts, sender, failures: 1);

                foreach (var (backoff, refusedInARow) in new[] { (1, 1), (2, 2), (4, 3) })
                {
                    time.Advance(TimeSpan.FromSeconds(backoff) - Tick);
                    sender.GetStatistics().Opening.Should().Be(0, $"the back-off after {refusedInARow} refused connects in a row is {backoff} s");
                    time.Advance(Tick);
                    sender.GetStatistics().Opening.Should().Be(1, $"the back-off of {backoff} s is over and messages wait");
                    if (refusedInARow < 3)
                    {
                        await RefuseNextAsync(attempts, sender, failures: refusedInARow + 1);
                    }
                }

                (await attempts.Reader.ReadAsync().AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout)).SetResult(false);
                await Task.WhenAll(sends.Skip(1)).WaitAsync(ScriptedSmtpServer.SafetyTimeout); // the new connection sent both

                // A second long message on that connection, and three more waiting: one more connect, refused.
                sends.Add(sender.SendAsync(second.Message));
                await second.Stream.HeadRead.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
                var more = Enumerable.Range(2, 3).Select(i => PoolTestMessages.Create("backoff", i)).ToList();
                sends.AddRange(more.Select(m => sender.SendAsync(m.Message)));
                await RefuseNextAsync(attempts, sender, failures: 4);

                time.Advance(TimeSpan.FromSeconds(1) - Tick);
                sender.GetStatistics().Opening.Should().Be(0);
                time.Advance(Tick);
                sender.GetStatistics().Opening.Should().Be(1, "a successful open started the back-off again at 1 s, not 8 s");
                (await attempts.Reader.ReadAsync().AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout)).SetResult(false);

                first.Stream.Open();
                second.Stream.Open();
                var results = await Task.WhenAll(sends).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
                results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
                server.Received.Select(m => m.MessageId).Should().BeEquivalentTo(
                    new[] { first.MessageId, second.MessageId }.Concat(messages.Concat(more).Select(m => m.MessageId)));
                Volatile.Read(ref connects).Should().Be(7, "the first connection, 4 refused connects and 2 that opened");
            }
            finally
            {
                // On a failed assertion: nothing left waiting on the fake clock, or the sender's disposal would wait for it.
                first.Stream.Open();
                second.Stream.Open();
                attempts.Writer.TryComplete();
                while (attempts.Reader.TryRead(out var pending))
                {
                    pending.TrySetResult(true);
                }

                time.Advance(TimeSpan.FromMinutes(10));
            }
        }
        finally
        {
            foreach (var over in refused)
            {
                await over.DisposeAsync();
            }
        }
    }

    /// <summary>Ends the pending connect with the server's 421 and waits until the pool counted it.</summary>
    private static async Task RefuseNextAsync(Channel<TaskCompletionSource<bool>> attempts, SmtpSender sender, int failures)
    {
        (await attempts.Reader.ReadAsync().AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout)).SetResult(true);
        for (var i = 0; i < 2000 && sender.GetStatistics() is var statistics && (statistics.Opening != 0 || statistics.OpenFailures < failures); i++)
        {
            await Task.Delay(5);
        }

        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opening == 0 && s.OpenFailures == failures);
    }
}
