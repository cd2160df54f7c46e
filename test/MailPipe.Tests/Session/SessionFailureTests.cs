using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

public class SessionFailureTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(17);
    private static readonly TimeSpan DataTerminationTimeout = TimeSpan.FromSeconds(43);

    private static SmtpSessionOptions FakeClockOptions(ObservableTimeProvider clock) => new()
    {
        TimeProvider = clock,
        ReceiveTimeout = ReceiveTimeout,
        SendTimeout = SendTimeout,
        DataTerminationTimeout = DataTerminationTimeout,
        DataFlushThreshold = 1024,
    };

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(server.ClientStream).Safe();
        return session;
    }

    private static void ShouldNotHaveEndedTheData(ScriptedSmtpServer server)
    {
        var afterData = server.ReceivedText[(server.ReceivedText.IndexOf("DATA\r\n", StringComparison.Ordinal) + "DATA\r\n".Length)..];
        afterData.Should().NotContain("\r\n.\r\n", "a cancelled or failed message must never be ended");
        afterData.Should().NotStartWith(".\r\n");
    }

    [Fact]
    public async Task Server_closing_in_the_middle_of_a_reply_is_a_protocol_error()
    {
        var script = new SmtpScript().Then(Greeting, "C: EHLO client").SendRaw("250-mail.example.test\r\n250-PIPEL").Close();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var act = () => session.EhloAsync("client").Safe();

        var ex = (await act.Should().ThrowAsync<SmtpProtocolException>()).Which;
        ex.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        ex.IsTransient.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
    }

    [Fact]
    public async Task Server_closing_after_a_complete_line_of_an_unfinished_reply_is_a_protocol_error()
    {
        var script = new SmtpScript().Then(Greeting, "C: NOOP").SendRaw("250-first line\r\n").Close();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var act = () => session.NoopAsync().Safe();

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
    }

    [Fact]
    public async Task Server_closing_between_replies_is_connection_closed()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "CLOSE");
        using var session = await ConnectedAsync(server);

        var act = () => session.NoopAsync().Safe();

        var ex = (await act.Should().ThrowAsync<SmtpException>()).Which;
        ex.Should().NotBeOfType<SmtpProtocolException>();
        ex.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        ex.IsTransient.Should().BeTrue();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Server_closing_before_the_greeting_is_connection_closed()
    {
        await using var server = ScriptedSmtpServer.Start("CLOSE");
        using var session = new AsyncSmtpSession();

        var act = () => session.ConnectAsync(server.ClientStream).Safe();

        var thrown = (await act.Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        thrown.Message.Should().Contain("(waiting for the greeting)", "breaker probe: it said 'waiting for the reply to (greeting)'");
        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.Greeting.Should().BeNull();
    }

    [Fact]
    public async Task Malformed_reply_is_a_protocol_error_and_closes_the_connection()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 25O ok", "EXPECT CLOSE");
        using var session = await ConnectedAsync(server);

        var act = () => session.NoopAsync().Safe();

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Reply_over_the_limits_is_reply_too_long()
    {
        var script = new SmtpScript().Then(Greeting, "C: EHLO client", "S: 250-a", "S: 250-b", "S: 250-c").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var options = new SmtpSessionOptions { Limits = new SmtpProtocolLimits { MaxReplyLineLength = 512, MaxReplyLines = 2, MaxReplyBytes = 4096 } };
        using var session = await ConnectedAsync(server, options);

        var act = () => session.EhloAsync("client").Safe();

        var ex = (await act.Should().ThrowAsync<SmtpProtocolException>()).Which;
        ex.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
        ex.IsTransient.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Endless_line_is_reply_too_long()
    {
        var script = new SmtpScript().Then(Greeting, "C: NOOP").SendRaw("250 " + new string('x', 600));
        await using var server = ScriptedSmtpServer.Start(script);
        var options = new SmtpSessionOptions { Limits = new SmtpProtocolLimits { MaxReplyLineLength = 512 } };
        using var session = await ConnectedAsync(server, options);

        var act = () => session.NoopAsync().Safe();

        (await act.Should().ThrowAsync<SmtpProtocolException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ReplyTooLong);
    }

    [Fact]
    public async Task Receive_timeout_on_the_fake_clock_is_TimedOut_and_transient()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "EXPECT CLOSE");
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        var armed = clock.ArmedCount(ReceiveTimeout);

        var noop = session.NoopAsync();
        await clock.WaitUntilArmedAsync(ReceiveTimeout, armed + 1);
        clock.Advance(ReceiveTimeout - TimeSpan.FromSeconds(1));
        noop.IsCompleted.Should().BeFalse("the timeout has not elapsed yet");
        clock.Advance(TimeSpan.FromSeconds(1));

        var ex = (await FluentActions.Awaiting(() => noop.Safe()).Should().ThrowAsync<SmtpException>()).Which;
        ex.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        ex.IsTransient.Should().BeTrue();
        ex.InnerException.Should().BeOfType<TimeoutException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Greeting_timeout_on_the_fake_clock_is_TimedOut()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start("EXPECT CLOSE");
        using var session = new AsyncSmtpSession(FakeClockOptions(clock));

        var connect = session.ConnectAsync(server.ClientStream);
        await clock.WaitUntilArmedAsync(ReceiveTimeout, 1);
        clock.Advance(ReceiveTimeout);

        (await FluentActions.Awaiting(() => connect.Safe()).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Reply_that_arrives_before_the_timeout_is_not_a_timeout()
    {
        var clock = new ObservableTimeProvider();
        var delayStarted = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting, "C: NOOP").Delay(TimeSpan.FromSeconds(20), clock, delayStarted).Send("250 late but in time")
            .Then("C: NOOP", "S: 250 again");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        var armed = clock.ArmedCount(ReceiveTimeout);

        var noop = session.NoopAsync();
        await clock.WaitUntilArmedAsync(ReceiveTimeout, armed + 1);
        await delayStarted.Task.Safe();
        clock.Advance(TimeSpan.FromSeconds(20));

        (await noop.Safe()).Text.Should().Be("late but in time");

        // The timer of the first command must not fire during the next one.
        clock.Advance(TimeSpan.FromSeconds(20));
        (await session.NoopAsync().Safe()).Text.Should().Be("again");
        session.State.Should().Be(SmtpSessionState.Connected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Send_timeout_when_the_server_stops_reading_is_TimedOut()
    {
        var clock = new ObservableTimeProvider();
        var release = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").WaitFor(release.Task).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        await session.DataAsync().Safe();
        var armed = clock.ArmedCount(SendTimeout);

        var write = session.WriteMessageDataAsync(new byte[64 * 1024].Select(_ => (byte)'x').ToArray());
        await clock.WaitUntilArmedAsync(SendTimeout, armed + 1);
        clock.Advance(SendTimeout);

        (await FluentActions.Awaiting(() => write.Safe()).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        release.SetResult();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task End_of_data_waits_for_the_data_termination_timeout()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: DATA", "S: 354 go", "C: body", "C: .", "EXPECT CLOSE");
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        await session.DataAsync().Safe();
        await session.WriteMessageDataAsync("body\n"u8.ToArray()).Safe();
        var armed = clock.ArmedCount(DataTerminationTimeout);

        var end = session.EndMessageDataAsync();
        await clock.WaitUntilArmedAsync(DataTerminationTimeout, armed + 1);
        clock.Advance(ReceiveTimeout);
        end.IsCompleted.Should().BeFalse("the end of data has its own, longer timeout");
        clock.Advance(DataTerminationTimeout - ReceiveTimeout);

        (await FluentActions.Awaiting(() => end.Safe()).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Caller_cancellation_is_OperationCanceledException_and_the_session_can_connect_again()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "EXPECT CLOSE");
        await using var fresh = ScriptedSmtpServer.Start("S: 220 fresh", "C: NOOP", "S: 250 ok");
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var noop = session.NoopAsync(cts.Token);
        await cts.CancelAsync();

        var ex = (await FluentActions.Awaiting(() => noop.Safe()).Should().ThrowAsync<OperationCanceledException>()).Which;
        ex.Should().NotBeAssignableTo<SmtpException>();
        ex.CancellationToken.Should().Be(cts.Token);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();

        (await session.ConnectAsync(fresh.ClientStream).Safe())!.Text.Should().Be("fresh");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await fresh.WaitAsync();
    }

    [Fact]
    public async Task Cancellation_during_the_greeting_is_OperationCanceledException()
    {
        await using var server = ScriptedSmtpServer.Start("EXPECT CLOSE");
        using var session = new AsyncSmtpSession();
        using var cts = new CancellationTokenSource();

        var connect = session.ConnectAsync(server.ClientStream, cancellationToken: cts.Token);
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => connect.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Already_cancelled_token_sends_nothing_and_leaves_the_session_usable()
    {
        // #17: nothing was written, so there is nothing to abort (before, the connection was closed).
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 Ok");
        using var session = await ConnectedAsync(server);

        var act = () => session.MailFromAsync("a@example.test", cancellationToken: new CancellationToken(canceled: true)).Safe();

        await act.Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Fact]
    public async Task Cancellation_while_writing_message_data_never_sends_the_end_of_data()
    {
        var release = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").WaitFor(release.Task).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024 });
        await session.DataAsync().Safe();
        using var cts = new CancellationTokenSource();

        // Many lines, so that a premature end of data would be easy to produce; the server stops reading, so the flush blocks.
        var content = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("line\r\n", 20_000)));
        var write = session.WriteMessageDataAsync(content, cts.Token);
        write.IsCompleted.Should().BeFalse("the server does not read, so the flush waits");
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => write.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        release.SetResult();
        await server.WaitAsync();
        server.ReceivedText.Should().Contain("line\r\n", "part of the data went out");
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Cancellation_before_EndMessageDataAsync_never_sends_the_end_of_data()
    {
        await using var server = ScriptedSmtpServer.Start(new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").ReadUntilClosed());
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();
        using var cts = new CancellationTokenSource();
        await session.WriteMessageDataAsync("Subject: x\r\n\r\nbody\r\n"u8.ToArray(), cts.Token).Safe();
        await cts.CancelAsync();

        var act = () => session.EndMessageDataAsync(cts.Token).Safe();

        await act.Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.SendingData, "a token cancelled before the call writes nothing (#17)");
        session.Dispose();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Cancellation_while_waiting_for_content_never_sends_the_end_of_data()
    {
        var received = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(
            new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go", "C: first line").Signal(received).ReadUntilClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024 });
        await session.DataAsync().Safe();
        var content = new Pipe();
        using var cts = new CancellationTokenSource();

        // Enough content to be flushed, then the source goes quiet and the session waits for more.
        var send = session.SendMessageDataAsync(content.Reader, cts.Token);
        await content.Writer.WriteAsync(Encoding.ASCII.GetBytes("first line\r\n" + new string('x', 2000)));
        await received.Task.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Content_reader_cancelled_with_CancelPendingRead_never_sends_the_end_of_data()
    {
        await using var server = ScriptedSmtpServer.Start(new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").ReadUntilClosed());
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();
        var content = new Pipe();
        await content.Writer.WriteAsync("Subject: half a message\r\n"u8.ToArray());

        var send = session.SendMessageDataAsync(content.Reader);
        content.Reader.CancelPendingRead();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Content_stream_failure_is_rethrown_and_never_sends_the_end_of_data()
    {
        await using var server = ScriptedSmtpServer.Start(new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").ReadUntilClosed());
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();

        var act = () => session.SendMessageDataAsync(new FailingStream("Subject: x\r\n\r\nhalf"u8.ToArray())).Safe();

        (await act.Should().ThrowAsync<IOException>()).Which.Message.Should().Be(FailingStream.FailureMessage);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Cancellation_while_SendBytesAsync_is_blocked_is_OperationCanceledException_and_disconnects()
    {
        var release = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting).WaitFor(release.Task).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendBytesAsync(new byte[100_000], cts.Token);
        send.IsCompleted.Should().BeFalse("the server does not read, so the write waits");
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        release.SetResult();
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendBytesAsync_blocked_by_the_server_times_out_with_the_send_timeout()
    {
        var clock = new ObservableTimeProvider();
        var release = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting).WaitFor(release.Task).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        var armed = clock.ArmedCount(SendTimeout);

        var send = session.SendBytesAsync(new byte[100_000]);
        await clock.WaitUntilArmedAsync(SendTimeout, armed + 1);
        clock.Advance(SendTimeout);

        (await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        release.SetResult();
        await server.WaitAsync();
    }

    [Fact]
    public async Task DisconnectAsync_from_another_thread_fails_the_pending_operation_with_connection_closed()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(new SmtpScript().Then(Greeting, "C: NOOP").Signal(reached).ExpectClosed());
        using var session = await ConnectedAsync(server);

        var noop = session.NoopAsync();
        await reached.Task.Safe();
        await session.DisconnectAsync().Safe();

        (await FluentActions.Awaiting(() => noop.Safe()).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task After_a_failure_the_session_can_connect_again()
    {
        await using var broken = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 9 broken");
        await using var fresh = ScriptedSmtpServer.Start("S: 220 fresh", "C: NOOP", "S: 250 ok");
        using var session = await ConnectedAsync(broken);
        await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<SmtpProtocolException>();

        await session.ConnectAsync(fresh.ClientStream).Safe();

        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await fresh.WaitAsync();
    }

    [Fact]
    public async Task Timer_of_an_operation_that_failed_does_not_fire_into_the_next_connection()
    {
        var clock = new ObservableTimeProvider();
        await using var broken = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 25x broken");
        await using var fresh = ScriptedSmtpServer.Start("S: 220 fresh", "C: NOOP", "S: 250 ok");
        using var session = await ConnectedAsync(broken, FakeClockOptions(clock));
        await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<SmtpProtocolException>();

        // The receive timer was running when the protocol error struck; time passes while the session is idle.
        clock.Advance(ReceiveTimeout * 2);

        (await session.ConnectAsync(fresh.ClientStream).Safe())!.Text.Should().Be("fresh");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await fresh.WaitAsync();
    }
}
