using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): a message sent once more on a fresh connection waits anew with its own AcquireTimeout
/// (README). The housekeeping tick that enforces it stops itself when nothing waits and no batch waits for results,
/// such as while a message's content is being written; the retry was queued without starting it again, so a retry
/// whose fresh connection never answered waited for that open's reply timeout instead of its AcquireTimeout.
/// </summary>
public sealed class Breaker16RetryAcquireTests
{
    [Fact]
    public async Task A_retry_whose_fresh_connection_never_answers_ends_at_its_AcquireTimeout()
    {
        var inData = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var drop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var first = ScriptedSmtpServer.Start(
            SmtpScript.Parse(
                "S: 220 test ESMTP",
                "C: EHLO [127.0.0.1]",
                "S: 250 test",
                "C: MAIL FROM:<a@example.test>", "S: 250 Ok",
                "C: RCPT TO:<b@example.test>", "S: 250 Ok",
                "C: DATA", "S: 354 go").Signal(inData).WaitFor(drop.Task).Drop(),
            clientWriteLimit: 16 * 1024); // the content's write blocks: the batch is in the content, not waiting for a result
        await using var second = ScriptedSmtpServer.Start(SmtpScript.Parse().ReadUntilClosed()); // never greets
        var secondConnect = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var time = new ObservableTimeProvider();
        var acquireTimeout = TimeSpan.FromSeconds(5);
        var connects = 0;
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            AcquireTimeout = acquireTimeout,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            ConnectStream = _ =>
            {
                if (Interlocked.Increment(ref connects) == 1)
                {
                    return ValueTask.FromResult<Stream>(first.ClientStream);
                }

                secondConnect.TrySetResult();
                return ValueTask.FromResult<Stream>(second.ClientStream);
            },
        });
        var content = Encoding.ASCII.GetBytes("Subject: x\r\n\r\n" + string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 20_000)));

        var send = sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), content));
        await inData.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        time.Advance(TimeSpan.FromMilliseconds(100)); // a housekeeping tick while the content is written: nothing waits
        drop.SetResult(); // the connection is lost in the content: NotSent, in memory, sent once more on a fresh connection
        await secondConnect.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        for (var i = 0; i < 120 && !send.IsCompleted; i++)
        {
            time.Advance(TimeSpan.FromMilliseconds(50)); // 6 s in all: past the retry's AcquireTimeout, far from the reply timeout (30 s)
            await Task.Yield();
        }

        var result = await send.WaitAsync(TimeSpan.FromSeconds(10));
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        sender.GetStatistics().Retries.Should().Be(1);
    }
}
