using System.Net;
using System.Net.Sockets;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// An idle connection found unfit when lent (past MaxLifetime, stale, NOOP refused) is replaced by a new one. The
/// messages taken for it have not had a byte written: while the new connection opens (up to the connect, greeting,
/// EHLO and AUTH timeouts against a server that does not answer) they are waiting messages, and their callers'
/// cancellation drops them at once. They were held by the opening worker, where no cancellation was seen.
/// </summary>
public sealed class SmtpSenderReopenCancellationTests
{
    [Fact]
    public async Task A_caller_cancelled_while_its_unfit_idle_connection_is_replaced_is_dropped_at_once()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var secondConnect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var releaseSecond = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connects = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            MaxLifetime = TimeSpan.FromSeconds(1),
            ConnectStream = async token =>
            {
                if (Interlocked.Increment(ref connects) >= 2)
                {
                    // The replacement: a server that does not answer yet.
                    secondConnect.TrySetResult();
                    await releaseSecond.Task.WaitAsync(token);
                    throw new SmtpException(SmtpErrorCode.ConnectionRefused, "Refused.") { IsTransient = true };
                }

                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, server.Port, token);
                return client.GetStream();
            },
        });

        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue();
        sender.GetStatistics().Idle.Should().Be(1);
        time.Advance(TimeSpan.FromSeconds(2)); // the idle connection is past its lifetime: it is replaced when lent

        using var cts = new CancellationTokenSource();
        var (message, messageId) = PoolTestMessages.Create("reopen", 0);
        var send = sender.SendAsync(message, cts.Token);
        await secondConnect.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        await cts.CancelAsync();

        // Nothing of the message was written: the cancellation drops it there and then, not when the open ends.
        send.IsCanceled.Should().BeTrue("the caller cancelled a message none of which was written, while a connection was being opened");
        releaseSecond.TrySetResult();
        await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().ThrowAsync<OperationCanceledException>();
        server.CountOf(messageId).Should().Be(0);
    }
}
