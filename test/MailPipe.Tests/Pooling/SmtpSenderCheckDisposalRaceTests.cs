using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// The health check's probe of an idle connection raced the sender's disposal: a NOOP answered 250 after the disposal
/// began made the check answer healthy ("An idle connection ... answered NOOP.") for a sender that can send nothing any
/// more, whose connection was being closed. A check the disposal overtook now throws <see cref="ObjectDisposedException"/>,
/// as one that starts after it does.
/// </summary>
public sealed class SmtpSenderCheckDisposalRaceTests
{
    [Fact]
    public async Task A_NOOP_answered_after_the_disposal_began_is_not_healthy()
    {
        var noopSeen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answerNoop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse("S: 220 test ESMTP", "C: EHLO [127.0.0.1]", "S: 250 test", "C: NOOP")
            .Signal(noopSeen).WaitFor(answerNoop.Task).Then("S: 250 ok", "C: QUIT", "S: 221 bye").ReadUntilClosed());
        var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            MaxConnections = 1,
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        });
        (await sender.CheckConnectionAsync(CancellationToken.None)).IsHealthy.Should().BeTrue(); // opens the connection, left idle

        var check = sender.CheckConnectionAsync(CancellationToken.None); // NOOP on the idle connection
        await noopSeen.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        sender.Dispose(); // the disposal begins while the NOOP waits for its reply
        answerNoop.TrySetResult();

        await FluentActions.Awaiting(() => check.WaitAsync(ScriptedSmtpServer.SafetyTimeout)).Should().ThrowAsync<ObjectDisposedException>();
        await sender.DisposeAsync().AsTask().WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        sender.GetStatistics().Discarded.Should().Be(1, "the probed connection is closed once, by the check");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_check_that_starts_after_the_disposal_began_throws()
    {
        var sender = new SmtpSender(new SmtpSenderOptions { Name = "test", ConnectStream = _ => throw new InvalidOperationException("no connection expected") });
        sender.Dispose();

        await FluentActions.Awaiting(() => sender.CheckConnectionAsync(CancellationToken.None)).Should().ThrowAsync<ObjectDisposedException>();
        await sender.DisposeAsync();
    }
}
