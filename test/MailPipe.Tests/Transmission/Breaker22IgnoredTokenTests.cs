using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Transmission;

/// <summary>
/// Breaker 22: a stream given to <c>ConnectAsync(Stream)</c> that ignores the token of its reads and writes (a
/// <see cref="Stream"/>'s cancellation is best effort: one built on a synchronous <c>Read</c> ignores it once the read
/// runs), or whose dispose does not end a pending read. A timeout, the caller's cancellation and
/// <c>DisconnectAsync</c> must still end the operation, with their own error, and leave nothing unobserved.
/// </summary>
public class Breaker22IgnoredTokenTests
{
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(11);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(7);

    [Fact]
    public async Task A_receive_timeout_ends_a_read_of_a_stream_that_ignores_its_token()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").ReadUntilClosed());
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { IgnoreReadToken = true }, Timed(clock));
        var armed = clock.ArmedCount(ReceiveTimeout);

        var noop = session.NoopAsync();
        await clock.WaitUntilArmedAsync(ReceiveTimeout, armed + 1);
        clock.Advance(ReceiveTimeout);

        var thrown = await FluentActions.Awaiting(() => BeforeTheServerGivesUp(noop)).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_handshake_timeout_ends_a_TLS_handshake_over_a_stream_that_ignores_its_token()
    {
        var clock = new ObservableTimeProvider();
        var handshakeTimeout = TimeSpan.FromSeconds(17);
        var options = Timed(clock);
        options.Tls = new SmtpTlsOptions { TargetHost = "mail.example.test", HandshakeTimeout = handshakeTimeout };

        // The server says 220 to STARTTLS, then never answers the client's hello.
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "STARTTLS"), "C: STARTTLS", "S: 220 go ahead").ReadUntilClosed());
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { IgnoreReadToken = true, IgnoreWriteToken = true }, options);
        var armed = clock.ArmedCount(handshakeTimeout);

        var starting = session.StartTlsAsync();
        await clock.WaitUntilArmedAsync(handshakeTimeout, armed + 1);
        clock.Advance(handshakeTimeout);

        var thrown = await FluentActions.Awaiting(() => BeforeTheServerGivesUp(starting)).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_caller_cancellation_ends_a_read_of_a_stream_that_ignores_its_token()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").Signal(reached).ReadUntilClosed());
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { IgnoreReadToken = true });
        using var cts = new CancellationTokenSource();

        var noop = session.NoopAsync(cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => BeforeTheServerGivesUp(noop)).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_send_timeout_ends_a_write_of_a_stream_that_ignores_its_token(bool chunking)
    {
        var clock = new ObservableTimeProvider();
        var neverRead = new TaskCompletionSource();
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok").WaitFor(neverRead.Task)
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").WaitFor(neverRead.Task);
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 32 * 1024);
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { IgnoreWriteToken = true }, Timed(clock));
        var armed = clock.ArmedCount(SendTimeout);

        // 1 MiB in 1,024-byte chunks: more than one chunk, so BDAT waits for the RCPT replies before its first chunk.
        var send = session.SendAsync(SmtpMessage.FromStream(Envelope("one@example.test"), new MemoryStream(Encoding.ASCII.GetBytes("Subject: big\r\n\r\n" + Lines(1024, 1024)))));
        await clock.WaitUntilArmedAsync(SendTimeout, armed + 1);
        clock.Advance(SendTimeout);
        var result = await BeforeTheServerGivesUp(send);
        neverRead.TrySetResult();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut, result.Exception?.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_disconnect_ends_a_pending_read_that_neither_the_token_nor_the_dispose_of_the_stream_ends()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").Signal(reached).ReadUntilClosed());
        using var session = await ConnectedAsync(new Breaker22OddStream(server.ClientStream) { IgnoreReadToken = true, DisposeEndsReads = false });

        var noop = session.NoopAsync();
        await reached.Task.Safe();
        await session.DisconnectAsync();

        var thrown = await FluentActions.Awaiting(() => BeforeTheServerGivesUp(noop)).Should().ThrowAsync<SmtpException>();
        thrown.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed, thrown.Which.ToString());
        session.IsConnected.Should().BeFalse();
    }

    [Fact]
    public async Task A_read_abandoned_by_a_disconnect_leaves_no_unobserved_task_exception()
    {
        var unobserved = new List<Exception>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            if (e.Exception.ToString().Contains("Breaker22", StringComparison.Ordinal))
            {
                lock (unobserved)
                {
                    unobserved.Add(e.Exception);
                }
            }
        }

        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            await AbandonAFailingReadAsync();
            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }

        lock (unobserved)
        {
            unobserved.Should().BeEmpty();
        }
    }

    private static async Task AbandonAFailingReadAsync()
    {
        var reached = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP").Signal(reached).ReadUntilClosed());
        var stream = new Breaker22OddStream(server.ClientStream) { IgnoreReadToken = true, DisposeEndsReads = false };
        using var session = await ConnectedAsync(stream);

        var noop = session.NoopAsync();
        await reached.Task.Safe();
        await session.DisconnectAsync();
        await FluentActions.Awaiting(() => BeforeTheServerGivesUp(noop)).Should().ThrowAsync<SmtpException>();

        // The read the session gave up on fails now, with nobody of MailPipe's waiting for it.
        stream.FailReads();
    }

    /// <summary>
    /// Bounds a wait well within <see cref="ScriptedSmtpServer.SafetyTimeout"/>: at that point the scripted server hangs
    /// up, which would end a read or write that MailPipe failed to end itself and hide the hang.
    /// </summary>
    private static Task<T> BeforeTheServerGivesUp<T>(Task<T> task) => task.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3);

    private static Task BeforeTheServerGivesUp(Task task) => task.WaitAsync(ScriptedSmtpServer.SafetyTimeout / 3);

    private static SmtpSessionOptions Timed(TimeProvider clock) => new() { TimeProvider = clock, ReceiveTimeout = ReceiveTimeout, SendTimeout = SendTimeout, DataTerminationTimeout = TimeSpan.FromSeconds(13) };

    private static async Task<AsyncSmtpSession> ConnectedAsync(Stream stream, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(stream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);
        return session;
    }
}
