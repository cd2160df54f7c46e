using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// AcquireTimeout is the longest wait for a connection (README), counted from the caller's SendAsync: a message that a
/// batch took but never wrote (the batch ended early, or its idle connection was checked first) and that waits again
/// keeps its first enqueue time. It got a new one, so its total wait could reach twice the AcquireTimeout and more.
/// </summary>
public sealed class SmtpSenderAcquireDeadlineTests
{
    [Fact]
    public async Task A_message_put_back_unsent_when_its_batch_ended_early_keeps_its_AcquireTimeout_from_its_SendAsync()
    {
        var mailSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var loseConnection = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bothQueued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // No PIPELINING: the second message of the batch is asked for only after the first's transaction; the connection
        // is lost while the reply to the first MAIL FROM is awaited.
        await using var server = ScriptedSmtpServer.Start(
            SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: MAIL FROM:<first@example.test>")
                .Signal(mailSeen).WaitFor(loseConnection.Task).Close());
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var connects = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            MaxBatchSize = 2,
            TimeProvider = time,
            AcquireTimeout = TimeSpan.FromSeconds(10),
            RetryOnFreshConnection = false,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            ConnectStream = async token =>
            {
                if (Interlocked.Increment(ref connects) == 1)
                {
                    await bothQueued.Task.WaitAsync(token); // both messages are in the first connection's batch
                    return server.ClientStream;
                }

                await Task.Delay(Timeout.InfiniteTimeSpan, token); // the replacement never opens; disposal cancels it
                throw new InvalidOperationException("Unreachable.");
            },
        });

        var first = sender.SendAsync(Message("first"));
        var second = sender.SendAsync(Message("second"));
        bothQueued.SetResult();
        await mailSeen.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        time.Advance(TimeSpan.FromSeconds(8)); // less than the reply timeout (30 s) and the AcquireTimeout (10 s)
        loseConnection.SetResult();
        (await first.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Outcome.Should().Be(SmtpSendOutcome.NotSent);
        second.IsCompleted.Should().BeFalse("the second message was never written: it waits again for a connection");

        // The first's result can come before the second is back in the queue: the tick that expires it must come after.
        for (var i = 0; i < 2000 && sender.GetStatistics().PendingRequests == 0; i++)
        {
            await Task.Delay(5);
        }

        sender.GetStatistics().PendingRequests.Should().Be(1);

        // 11 s after its SendAsync (3 s after it was put back): past its AcquireTimeout.
        time.Advance(TimeSpan.FromSeconds(3));
        var result = await second.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        server.ReceivedText.Should().NotContain("second@example.test");
    }

    private static SmtpMessage Message(string from) =>
        SmtpMessage.FromBytes(new SmtpEnvelope($"{from}@example.test", "rcpt@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray());
}
