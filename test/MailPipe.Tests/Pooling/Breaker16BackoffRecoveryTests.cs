using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A server that was down for a burst: every connect of it failed, the ones that failed while others were still being
/// opened counting as "failures in a row" (up to a 30 s open back-off), the last one failing every waiting message.
/// Once the server is back, the pool must open as many connections as the waiting messages need: with nothing left
/// working, the back-off of the dead burst has nothing to protect (it exists for a server at its connection limit
/// while other connections work).
/// </summary>
public sealed class Breaker16BackoffRecoveryTests
{
    [Fact]
    public async Task After_a_burst_whose_every_connect_failed_the_recovered_server_gets_more_than_one_connection_at_once()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        const int Connections = 8;

        // The burst's connects: all in flight together, then all refused (the server is down).
        var options = RefusedTogether(server, time, maxConnections: Connections, firstRefused: 1, lastRefused: Connections);

        await using var sender = new SmtpSender(options);
        var long1 = GatedContentStream.Create("recovery-long");
        try
        {
            var burst = Enumerable.Range(0, Connections).Select(i => PoolTestMessages.Create("recovery-burst", i)).ToList();
            var burstResults = await Task.WhenAll(burst.Select(m => sender.SendAsync(m.Message))).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            burstResults.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.NotSent);
            sender.GetStatistics().OpenFailures.Should().Be(Connections);

            // The server is back: a long message takes the first connection, two more wait for a second one.
            var sends = new List<Task<SmtpSendResult>> { sender.SendAsync(long1.Message) };
            await long1.Stream.HeadRead.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            var more = Enumerable.Range(0, 2).Select(i => PoolTestMessages.Create("recovery-more", i)).ToList();
            sends.AddRange(more.Select(m => sender.SendAsync(m.Message)));

            var statistics = sender.GetStatistics();
            (statistics.Opening + statistics.Opened).Should().Be(2, "two messages wait behind a busy connection and the server accepts connections again; the dead burst's back-off (30 s) must not hold them");

            long1.Stream.Open();
            var results = await Task.WhenAll(sends).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
        }
        finally
        {
            long1.Stream.Open();
            time.Advance(TimeSpan.FromMinutes(10));
        }
    }

    /// <summary>
    /// One burst opened several connections while another worked, and the server at its connection limit refused them
    /// all together: that is one refusal, not several in a row; the first back-off is 1 s (it was 4 s for three).
    /// </summary>
    [Fact]
    public async Task Connects_of_one_burst_refused_together_back_off_for_1_s_not_for_one_doubling_each()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        const int Refused = 3;
        var options = RefusedTogether(server, time, maxConnections: 1 + Refused, firstRefused: 2, lastRefused: 1 + Refused);

        await using var sender = new SmtpSender(options);
        var long1 = GatedContentStream.Create("together-long");
        try
        {
            var sends = new List<Task<SmtpSendResult>> { sender.SendAsync(long1.Message) };
            await long1.Stream.HeadRead.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            var more = Enumerable.Range(0, Refused + 1).Select(i => PoolTestMessages.Create("together", i)).ToList();
            sends.AddRange(more.Select(m => sender.SendAsync(m.Message)));
            for (var i = 0; i < 2000 && sender.GetStatistics() is var s && (s.Opening != 0 || s.OpenFailures < Refused); i++)
            {
                await Task.Delay(5);
            }

            sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opening == 0 && s.OpenFailures == Refused);
            time.Advance(TimeSpan.FromSeconds(1) - TimeSpan.FromMilliseconds(50));
            sender.GetStatistics().Opening.Should().Be(0, "the back-off is 1 s");
            time.Advance(TimeSpan.FromMilliseconds(50));
            (sender.GetStatistics() is var after && after.Opening + after.Opened > 1).Should().BeTrue(
                "the connects refused together are one refusal: the back-off is 1 s, not 4 s");

            long1.Stream.Open();
            var results = await Task.WhenAll(sends).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
        }
        finally
        {
            long1.Stream.Open();
            time.Advance(TimeSpan.FromMinutes(10));
        }
    }

    /// <summary>
    /// Options on <paramref name="time"/> (no acquire timeout, RFC 5321's reply timeouts) whose connects numbered
    /// <paramref name="firstRefused"/> to <paramref name="lastRefused"/> wait until the last of them began and are then
    /// all refused (a server down, or at its limit); every other connect reaches <paramref name="server"/>.
    /// </summary>
    private static SmtpSenderOptions RefusedTogether(LoopbackSmtpServer server, FakeTimeProvider time, int maxConnections, int firstRefused, int lastRefused)
    {
        var together = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connects = 0;
        var options = PoolTestMessages.Options(server.Port, maxConnections, maxBatchSize: 1);
        options.AcquireTimeout = Timeout.InfiniteTimeSpan;
        options.TimeProvider = time;
        options.Timeouts = SmtpTimeouts.Rfc5321;
        options.ConnectStream = async token =>
        {
            var n = Interlocked.Increment(ref connects);
            if (n >= firstRefused && n <= lastRefused)
            {
                if (n == lastRefused)
                {
                    together.TrySetResult();
                }

                await together.Task.WaitAsync(token);
                throw new SocketException((int)SocketError.ConnectionRefused);
            }

            var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, server.Port, token);
            return client.GetStream();
        };
        return options;
    }
}
