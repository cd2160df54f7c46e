using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Issue #10's clock-driven settings as the README states them, on a <see cref="FakeTimeProvider"/> (breaker15 probes):
/// <c>MaxLifetime</c> ("a connection is closed when next idle after this") and <c>AcquireTimeout</c> ("longest wait
/// for a connection: then NotSent/TimedOut").
/// </summary>
public sealed class SmtpSenderClockProbeTests
{
    [Fact]
    public async Task An_idle_connection_past_MaxLifetime_is_closed_with_QUIT_and_the_next_message_gets_a_new_one()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.TimeProvider = time;
        options.IdleTimeout = TimeSpan.FromHours(1);
        options.NoopAfterIdle = TimeSpan.FromHours(1);
        options.MaxLifetime = TimeSpan.FromMinutes(10);
        await using var sender = new SmtpSender(options);

        (await sender.SendAsync(PoolTestMessages.Create("life", 0).Message).Safe()).IsAccepted.Should().BeTrue();
        await WaitUntilAsync(() => sender.GetStatistics().Idle == 1);
        time.Advance(TimeSpan.FromMinutes(9));
        (await sender.SendAsync(PoolTestMessages.Create("life", 1).Message).Safe()).IsAccepted.Should().BeTrue();
        server.Connections.Should().Be(1, "younger than MaxLifetime: the same connection");

        await WaitUntilAsync(() => sender.GetStatistics().Idle == 1);
        time.Advance(TimeSpan.FromMinutes(1.5));
        await server.WaitUntilAsync(s => s.Quits == 1);
        await WaitUntilAsync(() => sender.GetStatistics().Discarded == 1);
        sender.GetStatistics().Idle.Should().Be(0);

        (await sender.SendAsync(PoolTestMessages.Create("life", 2).Message).Safe()).IsAccepted.Should().BeTrue();
        server.Connections.Should().Be(2);
    }

    [Fact]
    public async Task A_message_waiting_longer_than_AcquireTimeout_behind_a_busy_connection_is_NotSent_TimedOut_and_never_sent()
    {
        await using var server = new LoopbackSmtpServer(chunking: false);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        server.DataGate = gate.Task;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1, maxBatchSize: 1);
        options.TimeProvider = time;
        options.AcquireTimeout = TimeSpan.FromSeconds(5);
        options.Timeouts = SmtpTimeouts.Rfc5321;
        await using var sender = new SmtpSender(options);

        var first = PoolTestMessages.Create("busy", 0);
        var firstSend = sender.SendAsync(first.Message);
        await server.DataReceived.Safe();
        var second = PoolTestMessages.Create("waiting", 0);
        var secondSend = sender.SendAsync(second.Message);
        await WaitUntilAsync(() => sender.GetStatistics().PendingRequests == 1);

        time.Advance(TimeSpan.FromSeconds(6));
        var secondResult = await secondSend.Safe();
        secondResult.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        secondResult.IsTransientFailure.Should().BeTrue();
        secondResult.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);

        gate.SetResult();
        (await firstSend.Safe()).IsAccepted.Should().BeTrue();
        (await sender.SendAsync(PoolTestMessages.Create("after", 0).Message).Safe()).IsAccepted.Should().BeTrue();
        server.CountOf(second.MessageId).Should().Be(0, "a message timed out waiting is never sent afterwards");
        sender.GetStatistics().PendingRequests.Should().Be(0);
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
