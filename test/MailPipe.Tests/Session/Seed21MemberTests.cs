using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// Session 21's reviewer pass over the seed's <c>SmtpClient</c> (Hunny Mail++), for what no real server does on demand:
/// each test is written from the seed reference and the README's member-by-member table, against the scripted server.
/// </summary>
public sealed class Seed21MemberTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP";

    // SendCommand("DATA") + ReceiveResponse() + SendBytes(…, LAST): the whole DATA phase by hand, as an extension would.
    [Fact]
    public async Task DATA_by_SendCommand_then_SendBytes_with_the_end_of_data_then_ReceiveResponse()
    {
        var script = SmtpScript.Parse(Greeting, "C: DATA", "S: 354 go ahead")
            .ExpectRaw("Subject: raw\r\n\r\n..as given\r\n.\r\n")
            .Then("S: 250 2.0.0 queued", "C: NOOP", "S: 250 2.0.0 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.SendCommandAsync("DATA\r\n").Safe();
        var go = await session.ReceiveReplyAsync().Safe();
        await session.SendBytesAsync("Subject: raw\r\n\r\n..as given\r\n.\r\n"u8.ToArray()).Safe();
        var final = await session.ReceiveReplyAsync().Safe();

        go.Code.Should().Be(354);
        final.Code.Should().Be(250);
        final.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 0, 0));
        final.Text.Should().Be("queued");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // SendLines(FIRST|LAST) of nothing: the end of data alone; SendLines(FIRST) of a line starting with '.': stuffed.
    [Theory]
    [InlineData("", ".\r\n")]
    [InlineData(".", "..\r\n.\r\n")]
    [InlineData(".first\nsecond", "..first\r\nsecond\r\n.\r\n")]
    [InlineData("a\r\n.\r\nb\n", "a\r\n..\r\nb\r\n.\r\n")]
    public async Task SendLines_from_FIRST_to_LAST_stuffs_dots_and_ends_the_data_once(string content, string wire)
    {
        var script = SmtpScript.Parse(Greeting, "C: DATA", "S: 354 go ahead").ExpectRaw(wire).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        (await session.DataAsync().Safe()).Code.Should().Be(354);

        if (content.Length > 0)
        {
            await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(content)).Safe();
        }

        (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // Ehlo() refused by an old server (502): a returned reply; the caller falls back to Helo() on the same connection.
    [Fact]
    public async Task Ehlo_refused_with_502_is_returned_and_Helo_follows_on_the_same_connection()
    {
        var script = SmtpScript.Parse(Greeting, "C: EHLO client.example.test", "S: 502 5.5.1 EHLO not implemented", "C: HELO client.example.test", "S: 250 mail.example.test");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var ehlo = await session.EhloAsync("client.example.test").Safe();
        var helo = await session.HeloAsync("client.example.test").Safe();

        ehlo.Code.Should().Be(502);
        ehlo.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 5, 1));
        helo.Code.Should().Be(250);
        session.IsConnected.Should().BeTrue();
        session.Capabilities.Count.Should().Be(0);
        await server.WaitAsync();
    }

    // ReplyText(): code and CRLF removed, the first line only; EnhancedStatusCode(): optional, absent when not sent.
    [Fact]
    public async Task ReplyText_and_EnhancedStatusCode_follow_the_seeds_examples()
    {
        var script = SmtpScript.Parse(
            Greeting,
            "C: VRFY nobody",
            "S: 550 No such user here",
            "C: VRFY somebody",
            "S: 250-Somebody <somebody@example.test>",
            "S: 250 and a second line",
            "C: NOOP",
            "S: 250",
            "C: RSET",
            "S: 250 4.0.0 a class that is not the reply's");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var nobody = await session.VrfyAsync("nobody").Safe();
        var somebody = await session.VrfyAsync("somebody").Safe();
        var bare = await session.NoopAsync().Safe();
        var odd = await session.RsetAsync().Safe();

        nobody.Code.Should().Be(550);
        nobody.Text.Should().Be("No such user here");
        nobody.EnhancedStatusCode.Should().BeNull();
        somebody.Text.Should().Be("Somebody <somebody@example.test>");
        somebody.Lines.Should().HaveCount(2);
        bare.Text.Should().BeEmpty();
        odd.EnhancedStatusCode.Should().BeNull("RFC 3463 §2: the class must match the reply code's first digit");
        odd.Text.Should().Be("4.0.0 a class that is not the reply's");
        await server.WaitAsync();
    }

    // NumCapabilities()/CapabilityAt()/HasCapability(): an EHLO reply of one line has none; the pre-standard AUTH= line counts.
    [Fact]
    public async Task Capability_accessors_over_one_line_and_AUTH_equals_replies()
    {
        var script = SmtpScript.Parse(
            Greeting,
            "C: EHLO client.example.test",
            "S: 250 mail.example.test greets you",
            "C: EHLO client.example.test",
            "S: 250-mail.example.test",
            "S: 250-AUTH=LOGIN PLAIN",
            "S: 250-size 1000",
            "S: 250 X-Custom-Thing a b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.EhloAsync("client.example.test").Safe();
        var none = session.Capabilities;
        await session.EhloAsync("client.example.test").Safe();
        var three = session.Capabilities;

        none.Count.Should().Be(0);
        none.Domain.Should().Be("mail.example.test");
        three.Count.Should().Be(3);
        three[0].Line.Should().Be("AUTH=LOGIN PLAIN");
        three[2].Keyword.Should().Be("X-Custom-Thing");
        three[2].Parameters.Should().Equal("a", "b");
        three.Contains("SIZE").Should().BeTrue();
        three.Contains("x-custom-thing").Should().BeTrue();
        three.MaxMessageSize.Should().Be(1000);
        three.AuthenticationMechanisms.Should().Equal("LOGIN", "PLAIN");
        three.ToString().Should().Contain("AUTH=LOGIN PLAIN").And.Contain("size 1000");
        await server.WaitAsync();
    }

    // A 4xx/5xx reply is not a failure of the call: 421 to a command is returned (and closes the connection, RFC 5321 §3.8).
    [Fact]
    public async Task A_421_reply_to_MAIL_is_returned_and_the_connection_is_closed()
    {
        var script = SmtpScript.Parse(Greeting, "C: MAIL FROM:<a@example.test>", "S: 421 4.3.2 shutting down").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var reply = await session.MailFromAsync("a@example.test").Safe();

        reply.Code.Should().Be(421);
        reply.IsTransientNegative.Should().BeTrue();
        session.LastReply.Should().BeSameAs(reply);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    // Quit(): ReplyCode() after it is the 221 (LastReply), and Disconnect() afterwards is harmless.
    [Fact]
    public async Task After_Quit_the_last_reply_is_the_221_and_Disconnect_is_harmless()
    {
        var script = SmtpScript.Parse(Greeting, "C: QUIT", "S: 221 2.0.0 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var quit = await session.QuitAsync().Safe();
        await session.DisconnectAsync();

        quit.Code.Should().Be(221);
        session.LastReply.Should().BeSameAs(quit);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    // Connect() returns 0 with a negative greeting too: ReplyCode() says whether the server will serve (554), and QUIT is still possible.
    [Fact]
    public async Task A_554_greeting_is_returned_by_Connect_and_the_session_can_still_QUIT()
    {
        var script = SmtpScript.Parse("S: 554 5.3.2 no service for you", "C: QUIT", "S: 221 2.0.0 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Code.Should().Be(554);
        greeting.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 3, 2));
        session.IsConnected.Should().BeTrue();
        (await session.QuitAsync().Safe()).Code.Should().Be(221);
        await server.WaitAsync();
    }

    // A 421 greeting (a server at its connection limit) is returned by Connect() too, and the connection is closed.
    [Fact]
    public async Task A_421_greeting_is_returned_by_Connect_and_the_connection_is_closed()
    {
        var script = SmtpScript.Parse("S: 421 4.3.2 too many connections").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Code.Should().Be(421);
        session.LastReply.Should().BeSameAs(greeting);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    // SetTimeout()/SetSendTimeout() cover connect: a connect that never completes (a listener whose queue is full drops
    // the SYN) ends with TIMED_OUT_ERROR, here SmtpException TimedOut, and the same object can connect again.
    [Fact]
    public async Task A_connect_that_never_completes_ends_with_TimedOut_after_ConnectTimeout()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        try
        {
            // Fill the accept queue (never accepted) until a connect no longer completes.
            while (fillers.Count < 64)
            {
                var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(filler);
                using var wait = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));
                try
                {
                    await filler.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), wait.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            var clock = new ObservableTimeProvider();
            var connectTimeout = TimeSpan.FromSeconds(23);
            using var session = new AsyncSmtpSession(new SmtpSessionOptions { ConnectTimeout = connectTimeout, TimeProvider = clock });
            var connect = session.ConnectAsync("127.0.0.1", port);
            await clock.WaitUntilArmedAsync(connectTimeout, 1);
            clock.Advance(connectTimeout);
            var failure = await FluentActions.Awaiting(() => connect).Should().ThrowAsync<SmtpException>();

            failure.Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
            failure.Which.IsTransient.Should().BeTrue();
            session.IsConnected.Should().BeFalse();
            session.State.Should().Be(SmtpSessionState.Disconnected);
        }
        finally
        {
            foreach (var filler in fillers)
            {
                filler.Dispose();
            }
        }
    }

    // The README's Cancel() row: a token cancelled before the call sends nothing and keeps the connection; cancelled while
    // the call waits, the connection is closed (as Cancel() closed it) and the same object connects again.
    [Fact]
    public async Task Cancel_before_a_call_keeps_the_connection_and_during_a_call_closes_it()
    {
        var first = SmtpScript.Parse(Greeting, "C: NOOP").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(first);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.NoopAsync(new CancellationToken(canceled: true))).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeTrue("nothing was sent");
        using var cts = new CancellationTokenSource();
        var noop = session.NoopAsync(cts.Token);
        await Task.Run(() => cts.CancelAsync());
        await FluentActions.Awaiting(() => noop).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();

        await using var second = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 2.0.0 ok");
        (await session.ConnectAsync(second.ClientStream).Safe())!.Code.Should().Be(220);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await second.WaitAsync();
    }

    // SendCommand(): the seed's "XFOO\r\n" takes one trailing CRLF; a line end anywhere else is refused before anything is sent.
    [Theory]
    [InlineData("XFOO\r\nRSET")]
    [InlineData("XFOO\n")]
    [InlineData("XFOO\r\n\r\n")]
    [InlineData("XFOO\r")]
    public async Task SendCommand_refuses_a_line_end_other_than_one_trailing_CRLF_and_sends_nothing(string commandLine)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: XFOO", "S: 250 2.0.0 foo done");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.SendCommandAsync(commandLine)).Should().ThrowAsync<ArgumentException>();
        session.PendingReplyCount.Should().Be(0);
        await session.SendCommandAsync("XFOO\r\n").Safe();
        (await session.ReceiveReplyAsync().Safe()).Text.Should().Be("foo done");
        await server.WaitAsync();
    }

    // ErrorCode()/OsErrorCode(): a connection reset by the peer while a reply is awaited carries the OS's error code.
    [Fact]
    public async Task A_reset_while_waiting_for_a_reply_carries_the_os_error_code()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serverSide = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            await stream.WriteAsync("220 reset.example.test ESMTP\r\n"u8.ToArray());
            var buffer = new byte[256];
            _ = await stream.ReadAsync(buffer);
            client.Client.LingerState = new LingerOption(true, 0);
            client.Client.Close();
        });
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port).Safe();

        var failure = await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<SmtpException>();
        await serverSide.WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        failure.Which.ErrorCode.Should().BeOneOf(SmtpErrorCode.ConnectionClosed, SmtpErrorCode.SystemError);
        failure.Which.IsTransient.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        failure.Which.SocketError.Should().Be(SocketError.ConnectionReset, failure.Which.ToString());
        failure.Which.OsErrorCode.Should().NotBeNull().And.NotBe(0);
    }

    // ~SmtpClient() in the middle of SendLines (FIRST sent, LAST never): the connection closes without the end of data,
    // so no part of the message can be delivered; DisposeAsync sends no QUIT into the data either.
    [Fact]
    public async Task DisposeAsync_in_the_middle_of_message_data_never_ends_the_data()
    {
        var script = SmtpScript.Parse(Greeting, "C: DATA", "S: 354 go ahead").ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();
        await session.WriteMessageDataAsync("Subject: half\r\n\r\nfirst half\r\n"u8.ToArray()).Safe();

        await session.DisposeAsync();
        await server.WaitAsync();

        server.ClientClosed.Should().BeTrue();
        server.ReceivedText.Should().NotContain("\r\n.\r\n").And.NotContain("QUIT");
        session.IsConnected.Should().BeFalse();
    }
}
