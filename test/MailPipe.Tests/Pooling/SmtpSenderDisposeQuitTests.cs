using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// DisposeTimeout counts from the start of the disposal: the QUIT on idle connections runs alongside it. It ran first,
/// so a server that did not answer QUIT (up to 5 s) delayed the cancellation of the batches in flight by that much.
/// </summary>
public sealed class SmtpSenderDisposeQuitTests
{
    [Fact]
    public async Task An_idle_connection_that_never_answers_QUIT_does_not_delay_the_DisposeTimeout_of_a_batch_in_flight()
    {
        var mailSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var quitSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var busy = ScriptedSmtpServer.Start(Unanswered("MAIL FROM:<a@example.test>", mailSeen)); // a batch that never ends
        await using var idle = ScriptedSmtpServer.Start(Unanswered("QUIT", quitSeen));
        var time = new ObservableTimeProvider();
        var disposeTimeout = TimeSpan.FromSeconds(2);
        var connects = 0;
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 2,
            TimeProvider = time,
            IdleTimeout = Timeout.InfiniteTimeSpan,
            NoopAfterIdle = Timeout.InfiniteTimeSpan,
            DisposeTimeout = disposeTimeout,
            ConnectStream = _ => ValueTask.FromResult<Stream>(Interlocked.Increment(ref connects) == 1 ? busy.ClientStream : idle.ClientStream),
        });

        var send = sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray()));
        await mailSeen.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue(); // opens the second connection, left idle
        sender.GetStatistics().Idle.Should().Be(1);

        var disposal = sender.DisposeAsync().AsTask();
        await quitSeen.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await time.WaitUntilArmedAsync(disposeTimeout, 1); // armed while the QUIT waits for its reply (before: only after it)
        time.Advance(disposeTimeout);

        // The batch is cancelled at its DisposeTimeout; the QUIT's own limit (5 s) has not passed yet.
        await FluentActions.Awaiting(() => send.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().ThrowAsync<ObjectDisposedException>();
        disposal.IsCompleted.Should().BeFalse("the idle connection still waits for the reply to its QUIT");

        time.Advance(TimeSpan.FromSeconds(5));
        await disposal.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
    }

    /// <summary>A server that greets, answers EHLO, then signals <paramref name="command"/> and never answers it.</summary>
    private static SmtpScript Unanswered(string command, TaskCompletionSource seen) =>
        SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: " + command).Signal(seen).ReadUntilClosed();
}
