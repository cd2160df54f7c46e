using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A taken message put back in the queue (given back unsent by its batch, or queued for its retry on a fresh
/// connection) had its caller's token checked first and was marked waiting afterwards. A cancellation in between found
/// it taken (not droppable) and in no connection's flight (no batch to cancel), and did nothing: the message then
/// waited with a cancelled token, and with no AcquireTimeout and no connection able to take it (a server that stopped
/// answering) its caller never completed. The window is a few instructions wide; the tests land the cancellation in
/// it through <c>SmtpSenderOptions.BeforeRequeue</c>, called there.
/// </summary>
public sealed class SmtpSenderRequeueCancellationTests
{
    [Fact]
    public async Task A_caller_cancelled_while_its_unsent_message_is_given_back_by_its_batch_is_dropped_at_once()
    {
        var noopSent = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(
            SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: NOOP").Signal(noopSent).ReadUntilClosed()); // stops answering
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var cts = new CancellationTokenSource();
        var hooked = 0;
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = TimeSpan.FromSeconds(1),
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            BeforeRequeue = token => CancelIn(cts, ref hooked, token),
        });

        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue();
        time.Advance(TimeSpan.FromSeconds(2)); // checked with NOOP when lent: the batch gives its message back first

        var send = sender.SendAsync(Message(), cts.Token);
        await noopSent.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout); // the message was given back before the NOOP

        Volatile.Read(ref hooked).Should().Be(1);
        send.IsCanceled.Should().BeTrue("its caller cancelled while the message went back to the queue, and nothing of it was written");
        sender.GetStatistics().PendingRequests.Should().Be(0);
        sender.QueuedEntries.Should().Be(0);

        var disposal = sender.DisposeAsync().AsTask();
        time.Advance(TimeSpan.FromSeconds(10)); // past the NOOP's reply limit and DisposeTimeout
        await disposal.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        server.ReceivedText.Should().NotContain("MAIL FROM");
    }

    [Fact]
    public async Task A_caller_cancelled_while_its_message_is_queued_for_its_retry_is_dropped_at_once()
    {
        // The connection is lost before the reply to MAIL: NotSent, in memory, so it is queued for one more attempt.
        await using var first = ScriptedSmtpServer.Start(
            SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: MAIL FROM:<a@example.test>").Drop());
        var secondConnect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var cts = new CancellationTokenSource();
        var hooked = 0;
        var connects = 0;
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = new FakeTimeProvider(DateTimeOffset.UtcNow),
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            ConnectStream = async token =>
            {
                if (Interlocked.Increment(ref connects) == 1)
                {
                    return first.ClientStream;
                }

                secondConnect.TrySetResult(); // a fresh connection for a message still waiting: the server does not answer
                await Task.Delay(Timeout.InfiniteTimeSpan, token);
                throw new InvalidOperationException("Unreachable.");
            },
            BeforeRequeue = token => CancelIn(cts, ref hooked, token),
        });

        var send = sender.SendAsync(Message(), cts.Token);
        await Task.WhenAny(send, secondConnect.Task).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        Volatile.Read(ref hooked).Should().Be(1);
        send.IsCanceled.Should().BeTrue("its caller cancelled while the message was queued for its retry, and nothing of it was delivered");
        secondConnect.Task.IsCompleted.Should().BeFalse("no message waits for a fresh connection");
        sender.GetStatistics().PendingRequests.Should().Be(0);
        sender.QueuedEntries.Should().Be(0);
        await sender.DisposeAsync().AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout);
    }

    private static SmtpMessage Message() =>
        SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray());

    /// <summary>Cancels the caller's token in the requeue window (its registration runs here, synchronously, as it would on another thread then).</summary>
    private static void CancelIn(CancellationTokenSource cts, ref int hooked, CancellationToken token)
    {
        if (token == cts.Token)
        {
            Interlocked.Increment(ref hooked);
            cts.Cancel();
        }
    }
}
