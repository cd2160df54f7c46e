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

    [Fact]
    public async Task A_caller_cancelled_while_its_idle_connection_is_checked_with_NOOP_is_dropped_at_once()
    {
        var noopSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(Unanswered("NOOP", noopSent)); // a server that stopped answering (a NAT that forgot the idle connection)
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = TimeSpan.FromSeconds(1),
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        });

        // Idle long enough to be checked with NOOP when lent. The NOOP's reply is due only by the reply timeout; the
        // message, not a byte of it written, is dropped now; disposal's DisposeTimeout cancels the NOOP.
        await CancelWhileLentAsync(sender, time, noopSent, "the caller cancelled a message none of which was written, while its connection was checked with NOOP");
        server.ReceivedText.Should().NotContain("MAIL FROM");
    }

    [Fact]
    public async Task A_caller_cancelled_while_its_expired_idle_connection_waits_for_the_reply_to_QUIT_is_dropped_at_once()
    {
        var quitSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(Unanswered("QUIT", quitSent)); // the reply to QUIT never comes (its limit is 5 s on the fake clock)
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var connects = 0;
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            MaxLifetime = TimeSpan.FromSeconds(1),
            ConnectStream = async token =>
            {
                if (Interlocked.Increment(ref connects) == 1)
                {
                    return server.ClientStream;
                }

                await Task.Delay(Timeout.InfiniteTimeSpan, token); // the replacement never opens; disposal cancels it
                throw new InvalidOperationException("Unreachable.");
            },
        });

        // Past MaxLifetime: closed with QUIT when lent; disposal's advance passes the QUIT's limit and DisposeTimeout.
        await CancelWhileLentAsync(sender, time, quitSent, "the caller cancelled a message none of which was written, while the connection it was to use waited for the reply to QUIT");
    }

    /// <summary>A server that greets, answers EHLO, then signals <paramref name="command"/> and never answers it.</summary>
    private static SmtpScript Unanswered(string command, TaskCompletionSource seen) =>
        SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: " + command).Signal(seen).ReadUntilClosed();

    /// <summary>
    /// Opens the sender's connection, lets it idle 2 s on the fake clock, sends a message that is cancelled once the
    /// server saw <paramref name="lending"/>'s command, checks that it was dropped at once, then disposes the sender
    /// (10 s on the fake clock).
    /// </summary>
    private static async Task CancelWhileLentAsync(SmtpSender sender, FakeTimeProvider time, TaskCompletionSource lending, string because)
    {
        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue();
        time.Advance(TimeSpan.FromSeconds(2));

        using var cts = new CancellationTokenSource();
        var send = sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray()), cts.Token);
        await lending.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        await cts.CancelAsync();

        send.IsCanceled.Should().BeTrue(because);
        var disposal = sender.DisposeAsync().AsTask();
        time.Advance(TimeSpan.FromSeconds(10));
        await disposal.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
    }
}
