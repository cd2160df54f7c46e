using System.Buffers;
using System.IO.Pipelines;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

public class SessionStateTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        return session;
    }

    /// <summary>Every operation that needs a connection, by name.</summary>
    private static readonly Dictionary<string, Func<AsyncSmtpSession, Task>> Operations = new()
    {
        ["EHLO"] = s => s.EhloAsync("client"),
        ["HELO"] = s => s.HeloAsync("client"),
        ["MAIL"] = s => s.MailFromAsync("a@example.test"),
        ["RCPT"] = s => s.RcptToAsync("b@example.test"),
        ["DATA"] = s => s.DataAsync(),
        ["RSET"] = s => s.RsetAsync(),
        ["NOOP"] = s => s.NoopAsync(),
        ["VRFY"] = s => s.VrfyAsync("postmaster"),
        ["QUIT"] = s => s.QuitAsync(),
        ["SendCommand"] = s => s.SendCommandAsync("XFOO"),
        ["ReceiveReply"] = s => s.ReceiveReplyAsync(),
        ["SendBytes"] = s => s.SendBytesAsync("NOOP\r\n"u8.ToArray()),
        ["WriteMessageData"] = s => s.WriteMessageDataAsync("x"u8.ToArray()),
        ["EndMessageData"] = s => s.EndMessageDataAsync(),
        ["SendMessageData(memory)"] = s => s.SendMessageDataAsync("x"u8.ToArray().AsMemory()),
        ["SendMessageData(sequence)"] = s => s.SendMessageDataAsync(new ReadOnlySequence<byte>("x"u8.ToArray())),
        ["SendMessageData(stream)"] = s => s.SendMessageDataAsync(new MemoryStream("x"u8.ToArray())),
        ["SendMessageData(pipe)"] = s => s.SendMessageDataAsync(PipeReader.Create(new ReadOnlySequence<byte>("x"u8.ToArray()))),
    };

    public static TheoryData<string> AllOperations() => [.. Operations.Keys];

    public static TheoryData<string> CommandOperations() => ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "VRFY", "QUIT", "SendCommand"];

    public static TheoryData<string> DataOperations() =>
        ["WriteMessageData", "EndMessageData", "SendMessageData(memory)", "SendMessageData(sequence)", "SendMessageData(stream)", "SendMessageData(pipe)"];

    [Theory]
    [MemberData(nameof(AllOperations))]
    public async Task Every_operation_before_connect_is_an_invalid_operation(string operation)
    {
        using var session = new AsyncSmtpSession();

        var act = () => Operations[operation](session).Safe();

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("ConnectAsync");
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }

    [Theory]
    [MemberData(nameof(CommandOperations))]
    public async Task Commands_while_sending_data_are_invalid_and_send_nothing(string operation)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: DATA", "S: 354 go", "C: body", "C: .", "S: 250 ok");
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();

        var act = () => Operations[operation](session).Safe();

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("EndMessageDataAsync");
        session.State.Should().Be(SmtpSessionState.SendingData, "the refused call changes nothing");
        (await session.SendMessageDataAsync("body"u8.ToArray().AsMemory()).Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [MemberData(nameof(DataOperations))]
    public async Task Message_data_before_DATA_is_invalid_and_sends_nothing(string operation)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        var act = () => Operations[operation](session).Safe();

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("354");
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n");
    }

    [Fact]
    public async Task Message_data_after_a_refused_DATA_is_invalid()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: DATA", "S: 503 5.5.1 need RCPT first");
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();

        var act = () => session.WriteMessageDataAsync("x"u8.ToArray()).Safe();

        await act.Should().ThrowAsync<InvalidOperationException>();
    }

    [Fact]
    public async Task Two_concurrent_operations_the_second_is_an_invalid_operation()
    {
        var release = new TaskCompletionSource();
        var script = new SmtpScript().Then(Greeting).WaitFor(release.Task).Send("250 unsolicited but awaited").Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var waiting = session.ReceiveReplyAsync();
        var act = () => session.NoopAsync().Safe();

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("one operation at a time");
        waiting.IsCompleted.Should().BeFalse("the first operation is unaffected");
        release.SetResult();
        (await waiting.Safe()).Text.Should().Be("unsolicited but awaited");
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the refused NOOP wrote nothing, so this one gets the next reply");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Connect_while_connected_is_an_invalid_operation()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting);
        await using var other = ScriptedSmtpServer.Start(Greeting);
        using var session = await ConnectedAsync(server);

        var act = () => session.ConnectAsync(other.ClientStream).Safe();

        await act.Should().ThrowAsync<InvalidOperationException>();
        session.State.Should().Be(SmtpSessionState.Connected);
        other.ClientStream.IsDisposed.Should().BeFalse("a refused stream is not taken over");
    }

    [Fact]
    public async Task Connect_to_a_stream_that_cannot_read_or_write_is_an_argument_error()
    {
        using var session = new AsyncSmtpSession();
        using var readOnly = new MemoryStream([], writable: false);

        var act = () => session.ConnectAsync(readOnly);

        await act.Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.ConnectAsync((Stream)null!)).Should().ThrowAsync<ArgumentNullException>();
    }

    [Fact]
    public void Options_out_of_range_are_rejected()
    {
        ((Action)(() => _ = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.Zero }))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new AsyncSmtpSession(new SmtpSessionOptions { SendTimeout = TimeSpan.FromSeconds(-1) }))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new AsyncSmtpSession(new SmtpSessionOptions { DataFlushThreshold = 1023 }))).Should().Throw<ArgumentOutOfRangeException>();
        ((Action)(() => _ = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = Timeout.InfiniteTimeSpan }))).Should().NotThrow();
    }

    [Fact]
    public async Task Options_are_copied_when_the_session_is_created()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting);
        var options = new SmtpSessionOptions { DataFlushThreshold = 4096 };
        using var session = new AsyncSmtpSession(options);

        options.DataFlushThreshold = 1;

        await session.ConnectAsync(server.ClientStream).Safe();
        session.Options.DataFlushThreshold.Should().Be(4096);
    }

    [Fact]
    public async Task Connect_with_a_host_name_holding_CRLF_is_an_argument_error_before_any_network_access()
    {
        using var session = new AsyncSmtpSession();

        await FluentActions.Awaiting(() => session.ConnectAsync("mx.example.test\r\nEHLO x")).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.ConnectAsync(" ")).Should().ThrowAsync<ArgumentException>();
        await FluentActions.Awaiting(() => session.ConnectAsync("mx.example.test", 0)).Should().ThrowAsync<ArgumentOutOfRangeException>();
        await FluentActions.Awaiting(() => session.ConnectAsync("mx.example.test", 65536)).Should().ThrowAsync<ArgumentOutOfRangeException>();
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }
}

public sealed class PendingReplyGuardTests
{
    [Fact]
    public async Task A_typed_command_refuses_to_run_while_an_earlier_reply_is_unread()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: XFOO", "S: 500 unknown", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.SendCommandAsync("XFOO").Safe();

        await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<InvalidOperationException>().WithMessage("*ReceiveReplyAsync*");

        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(500);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the NOOP reply is not mistaken for XFOO's");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Ehlo_refuses_to_run_before_the_greeting_is_read()
    {
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: EHLO client.test", "S: 250 mx");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe();

        await FluentActions.Awaiting(() => session.EhloAsync("client.test")).Should().ThrowAsync<InvalidOperationException>();

        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(220);
        (await session.EhloAsync("client.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task DisposeAsync_during_an_operation_fails_it_and_every_later_call_throws_ObjectDisposedException()
    {
        // Issue #9 changed this contract: a disposed session was reusable before; now it is disposed for good.
        await using var first = ScriptedSmtpServer.Start(new SmtpScript().Then("S: 220 mx", "C: NOOP").ReadUntilClosed());
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(first.ClientStream).Safe();
        var stalled = session.NoopAsync();

        await session.DisposeAsync();

        await FluentActions.Awaiting(() => stalled.Safe()).Should().ThrowAsync<SmtpException>();
        await using var second = ScriptedSmtpServer.Start("S: 220 again");
        for (var i = 0; i < 2; i++)
        {
            await FluentActions.Awaiting(() => session.ConnectAsync(second.ClientStream).Safe()).Should().ThrowAsync<ObjectDisposedException>();
            await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<ObjectDisposedException>();
        }

        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.Dispose();
    }
}
