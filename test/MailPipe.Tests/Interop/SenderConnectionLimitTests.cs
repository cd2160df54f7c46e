using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Pooling;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Interop;

/// <summary>
/// A server with a per-client connection limit (nodemailer's smtp-server <c>maxClients</c>, Postfix's
/// <c>smtpd_client_connection_count_limit</c>, Exim's <c>smtp_accept_max_per_host</c>) greets the connections over its
/// limit with 421 and closes them, at once, while the ones under it are still being greeted (smtp-server looks up the
/// client's name first) or are in their TLS handshake or AUTH. Found against smtp-server 3.21.6 with maxClients 2 and
/// a pool of 4: the first 421 made every waiting message NotSent, although two connections were about to open.
/// </summary>
public sealed class SenderConnectionLimitTests
{
    private const string TooMany = "421 nodesmtp.test Too many connected clients, try again in a moment";

    [Fact]
    public async Task A_421_greeting_over_the_servers_connection_limit_leaves_the_messages_to_a_connection_still_opening()
    {
        await using var server = new LoopbackSmtpServer();
        var refused = new List<ScriptedSmtpServer>();
        var releaseFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var allConnecting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connects = 0;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 3, maxBatchSize: 1);
        options.AcquireTimeout = Timeout.InfiniteTimeSpan;
        options.TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow); // the open back-off never ends by itself
        options.Timeouts = SmtpTimeouts.Rfc5321;
        options.ConnectStream = async token =>
        {
            var n = Interlocked.Increment(ref connects);
            if (n == 3)
            {
                allConnecting.TrySetResult();
            }

            if (n == 1)
            {
                await releaseFirst.Task.WaitAsync(token); // still opening (greeting, TLS, AUTH)
                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, server.Port, token);
                return client.GetStream();
            }

            await allConnecting.Task.WaitAsync(token); // the 421s come while the first is still opening
            var over = ScriptedSmtpServer.Start($"S: {TooMany}", "CLOSE");
            lock (refused)
            {
                refused.Add(over);
            }

            return over.ClientStream;
        };

        try
        {
            await using var sender = new SmtpSender(options);
            var messages = Enumerable.Range(0, 3).Select(i => PoolTestMessages.Create("limit", i)).ToArray();
            var sends = messages.Select(m => sender.SendAsync(m.Message)).ToArray();

            await WaitUntilAsync(() => sender.GetStatistics() is { OpenFailures: 2, Opening: 1 });
            sends.Should().OnlyContain(s => !s.IsCompleted, "the connection still opening can send them");

            releaseFirst.TrySetResult();
            var results = await Task.WhenAll(sends).Safe();

            results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
            results.ShouldMatchServer(messages, server);
            Volatile.Read(ref connects).Should().Be(3, "no connection is tried again at once after a 421 while another is opening");
        }
        finally
        {
            foreach (var over in refused)
            {
                await over.DisposeAsync();
            }
        }
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        while (!condition() && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        condition().Should().BeTrue();
    }
}
