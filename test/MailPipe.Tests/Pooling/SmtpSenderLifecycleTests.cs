using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Tests.Pooling;

/// <summary>The pool's clock-driven rules (with <see cref="FakeTimeProvider"/>), disposal, argument checks and the result factories.</summary>
public sealed class SmtpSenderLifecycleTests
{
    [Fact]
    public async Task A_message_that_gets_no_connection_within_AcquireTimeout_is_NotSent_TimedOut()
    {
        await using var server = new LoopbackSmtpServer { Silent = true };
        var time = new FakeTimeProvider();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.TimeProvider = time;
        options.AcquireTimeout = TimeSpan.FromSeconds(5);
        await using var sender = new SmtpSender(options);

        var send = sender.SendAsync(PoolTestMessages.Create("acquire", 0).Message);
        await Task.Delay(50); // let the pool start opening the (silent) connection
        time.Advance(TimeSpan.FromSeconds(4));
        send.IsCompleted.Should().BeFalse();
        time.Advance(TimeSpan.FromSeconds(1.1));
        var result = await send.WaitAsync(TimeSpan.FromSeconds(10));

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
    }

    [Fact]
    public async Task An_idle_connection_is_closed_with_QUIT_after_IdleTimeout_and_checked_with_NOOP_after_NoopAfterIdle()
    {
        await using var server = new LoopbackSmtpServer();
        var time = new FakeTimeProvider();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.TimeProvider = time;
        options.IdleTimeout = TimeSpan.FromSeconds(30);
        options.NoopAfterIdle = TimeSpan.FromSeconds(5);
        await using var sender = new SmtpSender(options);

        (await sender.SendAsync(PoolTestMessages.Create("idle", 0).Message)).IsAccepted.Should().BeTrue();
        await WaitIdleAsync(sender);
        time.Advance(TimeSpan.FromSeconds(2));
        (await sender.SendAsync(PoolTestMessages.Create("idle", 1).Message)).IsAccepted.Should().BeTrue();
        server.Noops.Should().Be(0, "idle for less than NoopAfterIdle: lent without a round trip");

        await WaitIdleAsync(sender);
        time.Advance(TimeSpan.FromSeconds(6));
        (await sender.SendAsync(PoolTestMessages.Create("idle", 2).Message)).IsAccepted.Should().BeTrue();
        server.Noops.Should().Be(1, "idle for longer than NoopAfterIdle: checked with NOOP first");
        server.Connections.Should().Be(1);

        await WaitIdleAsync(sender);
        time.Advance(TimeSpan.FromSeconds(31));
        await server.WaitUntilAsync(s => s.Quits == 1);
        server.Quits.Should().Be(1);
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Idle == 0 && s.Discarded == 1 && s.Opened == 1);
    }

    [Fact]
    public async Task MaxMessagesPerConnection_replaces_the_connection_with_QUIT()
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.MaxMessagesPerConnection = 3;
        await using var sender = new SmtpSender(options);

        for (var i = 0; i < 7; i++)
        {
            (await sender.SendAsync(PoolTestMessages.Create("max", i).Message)).IsAccepted.Should().BeTrue();
        }

        server.Received.GroupBy(m => m.Connection).Select(g => g.Count()).Should().Equal(3, 3, 1);
        server.Quits.Should().Be(2);
    }

    [Fact]
    public async Task DisposeAsync_fails_queued_callers_with_ObjectDisposedException_and_later_calls_throw()
    {
        await using var server = new LoopbackSmtpServer { Silent = true };
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var queued = Enumerable.Range(0, 3).Select(i => sender.SendAsync(PoolTestMessages.Create("dispose", i).Message)).ToArray();
        await Task.Delay(50);

        await sender.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        foreach (var task in queued)
        {
            await task.Awaiting(t => t).Should().ThrowAsync<ObjectDisposedException>();
        }

        await sender.Awaiting(s => s.SendAsync(PoolTestMessages.Create("dispose", 9).Message)).Should().ThrowAsync<ObjectDisposedException>();
    }

    [Fact]
    public async Task DisposeAsync_sends_QUIT_on_idle_connections()
    {
        await using var server = new LoopbackSmtpServer();
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 2));
        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => sender.SendAsync(PoolTestMessages.Create("quit", i).Message)));
        var open = (int)sender.GetStatistics().Opened;

        await sender.DisposeAsync();

        await server.WaitUntilAsync(s => s.Quits == open);
        server.Quits.Should().Be(open).And.BeGreaterThan(0);
    }

    [Fact]
    public async Task Bad_arguments_throw_before_anything_is_queued()
    {
        await using var sender = new SmtpSender(PoolTestMessages.Options(1));
        await sender.Awaiting(s => s.SendAsync(null!)).Should().ThrowAsync<ArgumentNullException>();
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test") { MailParameters = "X=1\r\nRSET" }, "x"u8.ToArray());
        await sender.Awaiting(s => s.SendAsync(bad)).Should().ThrowAsync<ArgumentException>();
        await sender.Awaiting(s => s.SendBatchAsync([bad])).Should().ThrowAsync<ArgumentException>();
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Messages == 0 && s.PendingRequests == 0 && s.Opening == 0);

        FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions())).Should().Throw<ArgumentException>("Host is required");
        FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", MaxConnections = 0 })).Should().Throw<ArgumentOutOfRangeException>();
        FluentActions.Invoking(() => new SmtpSender(new SmtpSenderOptions { Host = "127.0.0.1", EhloName = "bad name" })).Should().Throw<ArgumentException>()
            .Which.ParamName.Should().Be("EhloName", "a name the server would refuse is bad input, not a NotSent result for every message");
    }

    [Fact]
    public async Task A_refused_recipient_is_data_not_an_exception_and_is_not_retried()
    {
        await using var server = new LoopbackSmtpServer();
        await using var sender = new SmtpSender(PoolTestMessages.Options(server.Port));
        var envelope = new SmtpEnvelope("sender@example.test", "unknown-1@example.test");

        var result = await sender.SendAsync(envelope, "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Recipients.Should().ContainSingle().Which.Reply!.Code.Should().Be(550);
        sender.GetStatistics().Retries.Should().Be(0);
        server.Received.Should().BeEmpty();
    }

    [Fact]
    public void SmtpSendResult_factories_make_results_applications_can_test_with()
    {
        var envelope = new SmtpEnvelope("a@example.test", "b@example.test", "c@example.test");

        var accepted = SmtpSendResult.Accepted(envelope);
        accepted.IsAccepted.Should().BeTrue();
        accepted.AcceptedRecipients.Should().HaveCount(2);
        accepted.FinalReply!.Code.Should().Be(250);

        var transient = SmtpSendResult.Refused(envelope, new SmtpReply(451, "4.3.0 try again later"));
        transient.Outcome.Should().Be(SmtpSendOutcome.Refused);
        transient.IsTransientFailure.Should().BeTrue();
        SmtpSendResult.Refused(envelope, new SmtpReply(554, "5.7.1 rejected")).IsTransientFailure.Should().BeFalse();

        var notSent = SmtpSendResult.NotSent(envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "refused"));
        notSent.IsTransientFailure.Should().BeTrue();
        notSent.AcceptedRecipients.Should().BeEmpty();

        var unknown = SmtpSendResult.Unknown(envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "lost"));
        unknown.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        unknown.IsTransientFailure.Should().BeFalse("an unknown outcome is never retried blindly");

        var mixed = SmtpSendResult.Create(envelope, SmtpSendOutcome.Accepted, recipients:
        [
            new SmtpRecipientResult(envelope.Recipients[0], new SmtpReply(250, "ok")),
            new SmtpRecipientResult(envelope.Recipients[1], new SmtpReply(550, "no such user")),
        ]);
        mixed.RefusedRecipients.Should().ContainSingle().Which.Recipient.Address.Should().Be("c@example.test");

        FluentActions.Invoking(() => SmtpSendResult.Accepted(envelope, new SmtpReply(451, "x"))).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => SmtpSendResult.Refused(envelope, new SmtpReply(250, "x"))).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => SmtpSendResult.Create(envelope, SmtpSendOutcome.Accepted, recipients: [])).Should().Throw<ArgumentException>();
        FluentActions.Invoking(() => SmtpSendResult.Create(envelope, SmtpSendOutcome.Accepted, recipients: [null!, null!])).Should().Throw<ArgumentException>()
            .WithMessage("*must not be null*");
        FluentActions.Invoking(() => EnhancedStatusCode.Parse(null!)).Should().Throw<ArgumentNullException>();
        FluentActions.Invoking(() => new SmtpRecipientResult(null!, null)).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("Recipient");
    }

    /// <summary>A caller gets its result before the connection is back in the pool: wait for that before moving the clock.</summary>
    private static async Task WaitIdleAsync(SmtpSender sender)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        while (sender.GetStatistics().Idle == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        sender.GetStatistics().Idle.Should().Be(1);
    }
}
