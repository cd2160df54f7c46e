using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// The health check's connection (MailPipe.Extensions.DependencyInjection) takes a pool slot while it opens, and a
/// message sent meanwhile waits for it. When that open fails, the waiting message must not be forgotten: it was left in
/// the queue with no connection busy or opening, until its AcquireTimeout (forever with an infinite one), even with the
/// server answering again.
/// </summary>
public sealed class SmtpSenderCheckOpenFailureTests
{
    [Fact]
    public async Task A_message_that_waited_for_the_checks_connection_is_sent_when_that_connection_fails_to_open()
    {
        await using var server = new LoopbackSmtpServer();
        var firstConnect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var failFirst = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connects = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            ConnectStream = async token =>
            {
                if (Interlocked.Increment(ref connects) == 1)
                {
                    firstConnect.TrySetResult();
                    await failFirst.Task.WaitAsync(token);
                    throw new SmtpException(SmtpErrorCode.ConnectionRefused, "The first connect is refused.") { IsTransient = true };
                }

                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, server.Port, token);
                return client.GetStream();
            },
        });

        var check = sender.CheckConnectionAsync(CancellationToken.None);
        await firstConnect.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        var (message, messageId) = PoolTestMessages.Create("check", 0);
        var send = sender.SendAsync(message);
        sender.GetStatistics().PendingRequests.Should().Be(1, "the message waits for the connection the check is opening");

        failFirst.TrySetResult();
        (await check.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).IsHealthy.Should().BeFalse();

        // The check's failed open released its slot under the pool's lock: the waiting message was dispatched then.
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(
            s => s.PendingRequests == 0 || s.Opening + s.InUse > 0,
            "a connection is opened for the message that waited (it was left waiting with none opening)");
        var result = await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        server.CountOf(messageId).Should().Be(1);
    }
}
