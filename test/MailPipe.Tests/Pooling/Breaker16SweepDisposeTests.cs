using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): DisposeAsync "completes when every connection is closed" — also a connection the idle
/// sweep is closing at that moment (its QUIT waiting for the reply). The sweep's close ran outside the pool's count of
/// work, so the disposal completed at once, with that connection still open.
/// </summary>
public sealed class Breaker16SweepDisposeTests
{
    [Fact]
    public async Task DisposeAsync_waits_for_a_connection_the_idle_sweep_is_closing()
    {
        var quitSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(
            "S: 220 test ESMTP",
            "C: EHLO [127.0.0.1]",
            "S: 250 test",
            "C: MAIL FROM:<a@example.test>", "S: 250 Ok",
            "C: RCPT TO:<b@example.test>", "S: 250 Ok",
            "C: DATA", "S: 354 go",
            "C: Subject: x", "C: ", "C: x", "C: .", "S: 250 queued",
            "C: QUIT").Signal(quitSeen).ReadUntilClosed()); // the QUIT of the idle timeout is never answered
        var time = new ObservableTimeProvider();
        var idleTimeout = TimeSpan.FromSeconds(2);
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            TimeProvider = time,
            IdleTimeout = idleTimeout,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        });

        var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray())).WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        result.IsAccepted.Should().BeTrue(result.ToString());
        using (var limit = new CancellationTokenSource(ScriptedSmtpServer.SafetyTimeout))
        {
            while (sender.GetStatistics().Idle != 1)
            {
                await Task.Delay(10, limit.Token); // the worker puts the connection back after the caller has its result
            }
        }

        time.Advance(idleTimeout); // the sweep closes the idle connection: QUIT, whose reply never comes
        await quitSeen.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        var disposal = sender.DisposeAsync().AsTask();

        disposal.IsCompleted.Should().BeFalse("the connection the sweep is closing still waits for the reply to its QUIT");
        server.Completion.IsCompleted.Should().BeFalse("the connection is still open");
        time.Advance(TimeSpan.FromSeconds(5)); // the QUIT's own limit
        await disposal.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await server.WaitAsync();
    }
}
