using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// The pool's hooks for MailPipe.Extensions.DependencyInjection (issue #11): the health check through the pool's
/// slots, and a batch of one that follows its caller's token on the wire. Against the scripted in-memory server.
/// </summary>
public sealed class SmtpSenderHostingHooksTests
{
    private static readonly byte[] Content = "Subject: x\r\n\r\nx\r\n"u8.ToArray();

    [Fact]
    public async Task The_check_opens_a_connection_that_stays_idle_then_checks_it_with_NOOP()
    {
        await using var server = ScriptedSmtpServer.Start(
            "S: 220 test ESMTP",
            "C: EHLO [127.0.0.1]",
            "S: 250 test",
            "C: NOOP",
            "S: 250 2.0.0 Ok",
            "C: QUIT",
            "S: 221 2.0.0 Bye");
        await using var sender = Create(server);

        var first = await sender.CheckConnectionAsync(CancellationToken.None);
        first.IsHealthy.Should().BeTrue();
        first.Description.Should().Be("A new connection to test opened and answered EHLO.");
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opened == 1 && s.Idle == 1 && s.InUse == 0);

        var second = await sender.CheckConnectionAsync(CancellationToken.None);
        second.IsHealthy.Should().BeTrue();
        second.Description.Should().Be("An idle connection to test answered NOOP.");
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opened == 1 && s.Idle == 1);
        await sender.DisposeAsync();
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_check_is_unhealthy_when_the_server_refuses_the_session()
    {
        await using var server = ScriptedSmtpServer.Start("S: 554 5.3.2 No service", "C: QUIT", "S: 221 2.0.0 Bye");
        await using var sender = Create(server);

        var check = await sender.CheckConnectionAsync(CancellationToken.None);

        check.IsHealthy.Should().BeFalse();
        check.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        sender.GetStatistics().Should().Match<SmtpSenderStatistics>(s => s.Opened == 0 && s.OpenFailures == 1 && s.Idle == 0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_alone_on_its_connection_is_cancelled_on_the_wire_without_ending_its_data()
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = SmtpScript.Parse(
                "S: 220 test ESMTP",
                "C: EHLO [127.0.0.1]",
                "S: 250 test",
                "C: MAIL FROM:<a@example.test>",
                "S: 250 2.1.0 Ok",
                "C: RCPT TO:<b@example.test>",
                "S: 250 2.1.5 Ok",
                "C: DATA")
            .Signal(reached)
            .ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        await using var sender = Create(server);
        using var cts = new CancellationTokenSource();

        var send = sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), Content), cts.Token);
        await reached.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await cts.CancelAsync();
        var cancelled = async () => await send.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        // The end of data was never written, so nothing can have been delivered: the caller's cancellation, not a result.
        (await cancelled.Should().ThrowAsync<OperationCanceledException>()).Which.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("\r\n.\r\n", "a cancelled transaction never gets its end of data");

        // The caller is completed from inside the batch; the worker closes the connection (or would return it) after
        // that, on its own thread: wait until it has let go of the connection, then see what became of it.
        var settled = await SettledAsync(sender);
        settled.Should().Match<SmtpSenderStatistics>(s => s.Idle == 0 && s.InUse == 0 && s.Discarded == 1);
    }

    /// <summary>The pool's statistics once no connection is in use or being opened (polled; bounded by the safety timeout).</summary>
    private static async Task<SmtpSenderStatistics> SettledAsync(SmtpSender sender)
    {
        var deadline = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        var statistics = sender.GetStatistics();
        while ((statistics.InUse > 0 || statistics.Opening > 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
            statistics = sender.GetStatistics();
        }

        return statistics;
    }

    private static SmtpSender Create(ScriptedSmtpServer server) => new(new SmtpSenderOptions
    {
        ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        Name = "test",
        MaxConnections = 1,
    });
}
