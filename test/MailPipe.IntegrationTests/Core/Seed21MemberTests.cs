using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;

namespace MailPipe.IntegrationTests.Core;

/// <summary>
/// Session 21's reviewer pass: the seed's <c>SmtpClient</c> (Hunny Mail++), member by member, written from its reference
/// and the README's table "The seed's SmtpClient, member by member" alone, against the real servers. Each test names the
/// seed member and the promise it checks.
/// </summary>
public sealed class Seed21MemberTests
{
    private const string Sender = "sender@example.test";
    private const string Client = "client.example.test";

    private static AsyncSmtpSession NewSession(ILoggerFactory? logger = null, TimeSpan? receive = null) => new(new SmtpSessionOptions
    {
        Tls = TlsTestSupport.TrustTestCertificate(),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ReceiveTimeout = receive ?? TimeSpan.FromSeconds(30),
        LoggerFactory = logger,
    });

    // Connect(address, port, wait=true): 0 and the 220 greeting as ReplyCode().
    [Fact]
    public async Task Connect_waits_for_the_greeting_and_returns_it_as_the_last_reply()
    {
        await using var session = NewSession();

        var greeting = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);

        greeting.Should().NotBeNull();
        greeting!.Code.Should().Be(220);
        session.Greeting.Should().BeSameAs(greeting);
        session.LastReply.Should().BeSameAs(greeting);
        session.IsConnected.Should().BeTrue();
    }

    // Connect(address, port, wait=false): returns once TCP is up; the greeting is read afterwards (ReceiveResponse()).
    [Fact]
    public async Task Connect_without_waiting_returns_null_and_the_greeting_is_the_next_reply()
    {
        await using var session = NewSession();

        var none = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, waitForGreeting: false);
        var greeting = await session.ReceiveReplyAsync();
        var ehlo = await session.EhloAsync(Client);

        none.Should().BeNull();
        greeting.Code.Should().Be(220);
        session.Greeting.Should().BeSameAs(greeting);
        ehlo.Code.Should().Be(250);
    }

    // Connect(address) takes a host name as well as a dotted address; "localhost" has ::1 and 127.0.0.1, the servers only the second.
    // The name is then the one the certificate must carry (the seed's ConnectTls(serverHostName) with the same name).
    [Fact]
    public async Task Connect_by_host_name_tries_each_address_and_STARTTLS_checks_that_name()
    {
        await using var session = NewSession();

        var greeting = await session.ConnectAsync("localhost", TestServers.PostfixSubmissionPort);
        await session.EhloAsync(Client);
        var starttls = await session.StartTlsAsync();

        greeting!.Code.Should().Be(220);
        session.Host.Should().Be("localhost");
        starttls.Code.Should().Be(220);
        session.IsEncrypted.Should().BeTrue();
        session.CertificateNameMismatch.Should().BeFalse();
        (await session.EhloAsync(Client)).Code.Should().Be(250);
    }

    // Connect() returns -1 when the host refuses; ErrorCode(), OsErrorCode(), ErrorMessage() say why.
    [Fact]
    public async Task Connect_to_a_closed_port_throws_ConnectionRefused_with_the_os_error_code()
    {
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var session = NewSession();
        var failure = await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, port)).Should().ThrowAsync<SmtpException>();

        failure.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        failure.Which.OsErrorCode.Should().NotBeNull().And.NotBe(0);
        failure.Which.SocketError.Should().Be(SocketError.ConnectionRefused);
        failure.Which.Message.Should().NotBeNullOrWhiteSpace();
        failure.Which.IsTransient.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
    }

    // Ehlo(): 2xx; NumCapabilities(), CapabilityAt(i), HasCapability(name) over the saved list; ReplyText() is the first line.
    [Theory]
    [InlineData("postfix")]
    [InlineData("exim")]
    [InlineData("aiosmtpd")]
    [InlineData("sink")]
    public async Task Ehlo_saves_each_extension_line_for_the_capability_accessors(string server)
    {
        var port = server switch
        {
            "postfix" => TestServers.PostfixPort,
            "exim" => TestServers.EximPort,
            "aiosmtpd" => TestServers.AiosmtpdPort,
            _ => TestServers.SinkPort,
        };
        TestServers.RequireListening(port);
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, port);

        var ehlo = await session.EhloAsync(Client);

        ehlo.Code.Should().Be(250);
        ehlo.Text.Should().Be(ehlo.Lines[0].Length > 0 ? ehlo.Lines[0] : string.Empty, "ReplyText() is the first line of a multi-line reply");
        // smtp-sink ends its list with a bare "250 ": a line with no keyword is no capability.
        var lines = ehlo.Lines.Skip(1).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        var capabilities = session.Capabilities;
        capabilities.Count.Should().Be(lines.Count, "every line after the first is one capability item");
        for (var i = 0; i < capabilities.Count; i++)
        {
            capabilities[i].Line.Should().Be(lines[i]);
            capabilities.Contains(capabilities[i].Keyword).Should().BeTrue();
            capabilities.Contains(capabilities[i].Keyword.ToLowerInvariant()).Should().BeTrue("keywords are case-insensitive (RFC 5321 §2.4)");
        }

        capabilities.Contains("8bitmime").Should().BeTrue("all four servers offer 8BITMIME");
        capabilities.Contains("XNOSUCHTHING").Should().BeFalse();
        capabilities.Select(c => c.Line).Should().Equal(lines, "foreach gives the server's order");
        FluentActions.Invoking(() => capabilities[capabilities.Count]).Should().Throw<Exception>("CapabilityAt() past the end is no item");
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    // Helo(): 2xx, and (a HELO session has no extensions) the capability list is empty.
    [Fact]
    public async Task Helo_after_Ehlo_returns_250_and_empties_the_capabilities()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        (await session.EhloAsync(Client)).Code.Should().Be(250);
        session.Capabilities.Count.Should().BeGreaterThan(0);

        var helo = await session.HeloAsync(Client);

        helo.Code.Should().Be(250);
        session.Capabilities.Count.Should().Be(0);
        session.Capabilities.Contains("PIPELINING").Should().BeFalse();
    }

    // MailFrom(sender, params): params as they go on the line (SIZE); RcptTo(): a 4xx is a result, not a failure;
    // ReplyCode()/ReplyText()/EnhancedStatusCode() of that reply.
    [Fact]
    public async Task MailFrom_with_SIZE_and_a_450_recipient_are_returned_replies_with_enhanced_codes()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);

        var mail = await session.MailFromAsync(Sender, "SIZE=1024");
        var refused = await session.RcptToAsync("tempfail@example.test");

        mail.Code.Should().Be(250);
        mail.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 1, 0));
        refused.Code.Should().Be(450);
        refused.IsTransientNegative.Should().BeTrue();
        refused.EnhancedStatusCode.Should().NotBeNull();
        refused.EnhancedStatusCode!.Value.Class.Should().Be(4);
        refused.Text.Should().NotStartWith("450").And.NotStartWith("4.").And.NotEndWith("\r\n");
        refused.Lines[0].Should().StartWith(refused.EnhancedStatusCode.Value.ToString());
        session.LastReply.Should().BeSameAs(refused);
        session.IsConnected.Should().BeTrue("a 4xx reply is not a failure of the call");

        // Data() with no accepted recipient: a negative reply, returned.
        var data = await session.DataAsync();
        data.IsNegative.Should().BeTrue(data.ToString());
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.RsetAsync()).Code.Should().Be(250);
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    // SendLines(FIRST|CONVERT_EOL … LAST): LF and CRLF both go as CRLF, a line starting with '.' is stuffed, LAST reads 250.
    [Fact]
    public async Task SendLines_with_LF_and_CRLF_pieces_and_leading_dots_is_stored_as_sent()
    {
        var recipient = TestServers.UniqueRecipient("seed21");
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);
        await session.MailFromAsync(Sender);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);

        string[] pieces = ["Subject: seed21 SendLines\n", "X-Mixed: crlf\r\n\n", ".dot first\n..", "two dots\r\n.\n", "end without newline"];
        foreach (var piece in pieces)
        {
            await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(piece));
        }

        var final = await session.EndMessageDataAsync();

        final.Code.Should().Be(250, final.ToString());
        session.LastReply.Should().BeSameAs(final);
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored[0])).Should().Be(
            "Subject: seed21 SendLines\r\nX-Mixed: crlf\r\n\r\n.dot first\r\n..two dots\r\n.\r\nend without newline\r\n");
    }

    // SendBytes(bytes, len, 0) then SendBytes(…, LAST): uninterpreted bytes, then the response is received.
    [Fact]
    public async Task SendBytes_of_a_prepared_message_ending_with_the_dot_then_ReceiveResponse_reads_250()
    {
        var recipient = TestServers.UniqueRecipient("seed21");
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);
        await session.MailFromAsync(Sender);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);

        await session.SendBytesAsync("Subject: seed21 SendBytes\r\n\r\n"u8.ToArray());
        await session.SendBytesAsync("..stuffed by the caller\r\nlast\r\n.\r\n"u8.ToArray());
        var final = await session.ReceiveReplyAsync();

        final.Code.Should().Be(250, final.ToString());
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync()).Code.Should().Be(250, "the session goes on after the data phase ended by raw bytes");
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored[0])).Should().Be("Subject: seed21 SendBytes\r\n\r\n.stuffed by the caller\r\nlast\r\n");
    }

    // SendBytes outside DATA: a command line written by hand, its reply read with ReceiveResponse().
    [Fact]
    public async Task SendBytes_of_command_lines_then_ReceiveResponse_reads_their_replies_in_order()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);

        await session.SendBytesAsync("NOOP\r\n"u8.ToArray());
        var noop = await session.ReceiveReplyAsync();
        await session.SendBytesAsync("RSET\r\nNOOP\r\n"u8.ToArray());
        var rset = await session.ReceiveReplyAsync();
        var second = await session.ReceiveReplyAsync();

        noop.Code.Should().Be(250);
        rset.Code.Should().Be(250);
        second.Code.Should().Be(250);
        (await session.NoopAsync()).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    // SendCommand("XFOO\r\n") + ReceiveResponse(): the seed's own example; an unknown command's 5xx is a result.
    [Fact]
    public async Task SendCommand_XFOO_with_its_CRLF_and_ReceiveResponse_return_the_servers_502()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);

        await session.SendCommandAsync("XFOO\r\n");
        var reply = await session.ReceiveReplyAsync();

        reply.Code.Should().BeOneOf(500, 502);
        session.LastReply.Should().BeSameAs(reply);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    // SendCommand() several times, then ReceiveResponse() for each (RFC 2920 PIPELINING), then the content with SendBytes(LAST).
    [Fact]
    public async Task A_pipelined_envelope_by_SendCommand_gets_each_reply_in_order_and_the_message_arrives()
    {
        var recipient = TestServers.UniqueRecipient("seed21");
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync(Client);
        session.Capabilities.SupportsPipelining.Should().BeTrue();

        await session.SendCommandAsync($"MAIL FROM:<{Sender}> SIZE=100");
        await session.SendCommandAsync("RCPT TO:<tempfail@example.test>");
        await session.SendCommandAsync($"RCPT TO:<{recipient}>");
        await session.SendCommandAsync("DATA");
        session.PendingReplyCount.Should().Be(4);
        var replies = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            replies.Add((await session.ReceiveReplyAsync()).Code);
        }

        await session.SendBytesAsync("Subject: seed21 pipelined by hand\r\n\r\nbody\r\n.\r\n"u8.ToArray());
        var final = await session.ReceiveReplyAsync();

        replies.Should().Equal(250, 450, 250, 354);
        final.Code.Should().Be(250, final.ToString());
        var stored = await Maildir.WaitForPostfixAsync(recipient);
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored[0])).Should().Be("Subject: seed21 pipelined by hand\r\n\r\nbody\r\n");
    }

    // An extension by hand (the seed's reason for SendCommand/SendBytes): BDAT (RFC 3030) on Exim.
    [Fact]
    public async Task BDAT_by_SendCommand_and_SendBytes_then_ReceiveResponse_on_Exim()
    {
        var recipient = TestServers.UniqueRecipient("seed21");
        var content = Encoding.ASCII.GetBytes($"Subject: seed21 BDAT by hand\r\nTo: <{recipient}>\r\n\r\n.not stuffed in BDAT\r\n");
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.EhloAsync(Client);
        session.Capabilities.SupportsChunking.Should().BeTrue();
        (await session.MailFromAsync(Sender)).Code.Should().Be(250);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);

        await session.SendCommandAsync($"BDAT {content.Length} LAST");
        await session.SendBytesAsync(content);
        var final = await session.ReceiveReplyAsync();

        final.Code.Should().Be(250, final.ToString());
        (await session.NoopAsync()).Code.Should().Be(250);
        var stored = Encoding.ASCII.GetString(await Maildir.WaitForEximAsync(recipient));
        stored.Should().Contain("\n.not stuffed in BDAT", "BDAT content goes as it is: no dot-stuffing (RFC 3030 §2)");
    }

    // Vrfy(): a 250, 252 or 55x is a result.
    [Theory]
    [InlineData("postfix")]
    [InlineData("exim")]
    [InlineData("aiosmtpd")]
    public async Task Vrfy_returns_the_servers_reply(string server)
    {
        var port = server switch { "postfix" => TestServers.PostfixPort, "exim" => TestServers.EximPort, _ => TestServers.AiosmtpdPort };
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, port);
        await session.EhloAsync(Client);

        var reply = await session.VrfyAsync("postmaster@example.test");

        reply.Code.Should().BeOneOf(250, 251, 252, 502, 550, 551, 553);
        session.IsConnected.Should().BeTrue();
    }

    // Quit() then Disconnect(): 221, and Disconnect() after QUIT is harmless; Connect() again on the same object.
    [Fact]
    public async Task Quit_then_Disconnect_then_Connect_again_on_the_same_object()
    {
        await using var session = NewSession();
        await session.DisconnectAsync(); // Disconnect() before any Connect(): nothing to close.
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.EhloAsync(Client);

        var quit = await session.QuitAsync();
        await session.DisconnectAsync();

        quit.Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
        session.Capabilities.Count.Should().Be(0);
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync(Client)).Code.Should().Be(250);
    }

    // Connect(port 465, wait=false) + ConnectTls(host, wait=true): the implicit TLS case of the seed's ConnectTls().
    [Fact]
    public async Task Connect_without_waiting_then_ConnectTls_waiting_reads_the_greeting_over_TLS()
    {
        await using var session = NewSession();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, waitForGreeting: false)).Should().BeNull();
        var greeting = await session.ConnectTlsAsync("localhost", waitForGreeting: true);

        session.IsEncrypted.Should().BeTrue();
        greeting!.Code.Should().Be(220);
        session.Greeting.Should().BeSameAs(greeting);
        (await session.EhloAsync(Client)).Code.Should().Be(250);
        session.Capabilities.Contains("STARTTLS").Should().BeFalse();
    }

    // Connect(wait=false) + ConnectTls(host, wait=false) + ReceiveResponse(): the greeting read by hand over TLS.
    [Fact]
    public async Task Implicit_TLS_without_waiting_anywhere_then_ReceiveResponse_reads_the_greeting()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, waitForGreeting: false);

        (await session.ConnectTlsAsync("localhost")).Should().BeNull();
        var greeting = await session.ReceiveReplyAsync();

        greeting.Code.Should().Be(220);
        session.Greeting.Should().BeSameAs(greeting);
        (await session.EhloAsync(Client)).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    // SendBytes("QUIT\r\n") + ReceiveResponse(): the 221 is returned and the connection is closed.
    [Fact]
    public async Task QUIT_by_SendBytes_then_ReceiveResponse_returns_221_and_closes()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort);
        await session.EhloAsync(Client);

        await session.SendBytesAsync("QUIT\r\n"u8.ToArray());
        var bye = await session.ReceiveReplyAsync();

        bye.Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
        (await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort))!.Code.Should().Be(220);
    }

    // Starttls() sent by hand + ConnectTls(host, wait=false): the STARTTLS case; capabilities are learned again by EHLO.
    [Fact]
    public async Task Starttls_by_SendCommand_then_ConnectTls_without_waiting_then_Ehlo_and_AuthPlain()
    {
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort);
        await session.EhloAsync(Client);
        session.Capabilities.Contains("STARTTLS").Should().BeTrue();

        await session.SendCommandAsync("STARTTLS");
        (await session.ReceiveReplyAsync()).Code.Should().Be(220);
        (await session.ConnectTlsAsync("localhost")).Should().BeNull();

        session.IsEncrypted.Should().BeTrue();
        session.Capabilities.Count.Should().Be(0, "RFC 3207 §4.2: what was learned before TLS is forgotten");
        (await session.EhloAsync(Client)).Code.Should().Be(250);
        session.Capabilities.AuthenticationMechanisms.Should().Contain("PLAIN");
        var auth = await session.AuthPlainAsync(TestServers.User, TestServers.Password);
        auth.Code.Should().Be(235, auth.ToString());
        session.IsAuthenticated.Should().BeTrue();
    }

    // AuthLogin/AuthPlain/AuthCramMd5 with a wrong password: 0 and a 535 reply code; the session goes on.
    [Theory]
    [InlineData("LOGIN")]
    [InlineData("PLAIN")]
    [InlineData("CRAM-MD5")]
    public async Task A_refused_password_is_a_returned_535_and_the_right_one_then_succeeds(string mechanism)
    {
        await using var session = await SubmissionOverTlsAsync();
        if (!session.Capabilities.AuthenticationMechanisms.Contains(mechanism))
        {
            throw new InvalidOperationException($"Postfix on {TestServers.PostfixSubmissionPort} should offer {mechanism}: {session.Capabilities}");
        }

        var refused = await AuthAsync(session, mechanism, "wrong-password");
        var accepted = await AuthAsync(session, mechanism, TestServers.Password);

        refused.Code.Should().Be(535, refused.ToString());
        refused.EnhancedStatusCode.Should().NotBeNull();
        accepted.Code.Should().Be(235, accepted.ToString());
        session.AuthenticatedMechanism.Should().Be(mechanism);
    }

    // Auth(mechanism, params): the raw exchange; the seed's example mechanism by hand (CRAM-MD5 digest in the callback).
    [Fact]
    public async Task Auth_raw_with_a_callback_answers_the_CRAM_MD5_challenge()
    {
        await using var session = await SubmissionOverTlsAsync();

        var reply = await session.AuthenticateAsync("cram-md5", initialResponse: null, (challenge, _) =>
        {
#pragma warning disable CA5351 // CRAM-MD5 (RFC 2195) is HMAC-MD5 by definition.
            var digest = HMACMD5.HashData(Encoding.UTF8.GetBytes(TestServers.Password), challenge.Span);
#pragma warning restore CA5351
            var answer = TestServers.User + " " + Convert.ToHexStringLower(digest);
            return ValueTask.FromResult<ReadOnlyMemory<byte>?>(Encoding.ASCII.GetBytes(answer));
        });

        reply.Code.Should().Be(235, reply.ToString());
        session.IsAuthenticated.Should().BeTrue();
    }

    // Auth(mechanism, params) with params: the initial response (RFC 4954 §4) of PLAIN.
    [Fact]
    public async Task Auth_raw_with_an_initial_response_authenticates_with_PLAIN()
    {
        await using var session = await SubmissionOverTlsAsync();

        var reply = await session.AuthenticateAsync("PLAIN", Encoding.UTF8.GetBytes($"\0{TestServers.User}\0{TestServers.Password}"), (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null));

        reply.Code.Should().Be(235, reply.ToString());
    }

    // Auth(mechanism) of a mechanism the server does not know: its 5xx is a result, the session goes on.
    [Fact]
    public async Task Auth_raw_with_an_unknown_mechanism_returns_the_servers_refusal()
    {
        await using var session = await SubmissionOverTlsAsync();

        var reply = await session.AuthenticateAsync("X-NOSUCH", initialResponse: null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null));

        reply.IsPermanentNegative.Should().BeTrue(reply.ToString());
        session.IsConnected.Should().BeTrue();
        (await session.AuthPlainAsync(TestServers.User, TestServers.Password)).Code.Should().Be(235);
    }

    // SetReceiveTimeout(): a receive that times out returns -1 with TIMED_OUT_ERROR; here, no greeting on the implicit-TLS port.
    [Fact]
    public async Task A_receive_timeout_throws_TimedOut_and_closes_the_connection()
    {
        await using var session = NewSession(receive: TimeSpan.FromSeconds(1));

        var failure = await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort)).Should().ThrowAsync<SmtpException>();

        failure.Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        failure.Which.IsTransient.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220, "the same object connects again");
    }

    // Cancel() from another thread: the stalled operation ends at once, the connection is closed, Connect() again works.
    [Fact]
    public async Task Cancelling_a_stalled_receive_closes_the_connection_and_Connect_works_again()
    {
        await using var session = NewSession();
        using var cts = new CancellationTokenSource();
        var connect = session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort, cancellationToken: cts.Token);
        await UntilConnectedAsync(session);

        await Task.Run(() => cts.CancelAsync());

        await FluentActions.Awaiting(() => connect).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
    }

    // Cancel()'s other form for a caller with no token: Disconnect() from another thread aborts the running command.
    [Fact]
    public async Task Disconnect_from_another_thread_aborts_a_stalled_receive()
    {
        await using var session = NewSession();
        var connect = session.ConnectAsync(TestServers.Host, TestServers.PostfixTlsPort);
        await UntilConnectedAsync(session);

        await Task.Run(async () => await session.DisconnectAsync());

        var failure = await FluentActions.Awaiting(() => connect).Should().ThrowAsync<SmtpException>();
        failure.Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
    }

    // SetTraceOutput(): the dialogue as C:/S: lines; SetTraceOutput(null) (no LoggerFactory) gives none.
    [Fact]
    public async Task Trace_output_shows_the_dialogue_at_Trace_under_MailPipe_Protocol()
    {
        using var logger = new ListLoggerProvider();
        await using (var session = NewSession(logger))
        {
            await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
            await session.EhloAsync(Client);
            await session.NoopAsync();
            await session.QuitAsync();
        }

        var protocol = logger.Entries.Where(l => l.Category == "MailPipe.Protocol" && l.Level == LogLevel.Trace).Select(l => l.Message).ToList();
        protocol.Should().Contain(m => m.StartsWith("S: 220", StringComparison.Ordinal));
        protocol.Should().Contain("C: EHLO " + Client);
        protocol.Should().Contain("C: NOOP");
        protocol.Should().Contain(m => m.StartsWith("S: 250", StringComparison.Ordinal));
        protocol.Should().Contain("C: QUIT");
        protocol.Should().Contain(m => m.StartsWith("S: 221", StringComparison.Ordinal));
    }

    // ~SmtpClient(): closes the connection; MailPipe's DisposeAsync sends QUIT first.
    [Fact]
    public async Task DisposeAsync_sends_QUIT_and_reads_221()
    {
        using var logger = new ListLoggerProvider();
        var session = NewSession(logger);
        await session.ConnectAsync(TestServers.Host, TestServers.EximPort);
        await session.EhloAsync(Client);

        await session.DisposeAsync();

        session.IsConnected.Should().BeFalse();
        var protocol = logger.Entries.Where(l => l.Category == "MailPipe.Protocol").Select(l => l.Message).ToList();
        protocol.Should().Contain("C: QUIT");
        protocol.Should().Contain(m => m.StartsWith("S: 221", StringComparison.Ordinal));
    }

    /// <summary>Waits (up to 10 s) until TCP is up, so that the call in flight is waiting for the greeting.</summary>
    private static async Task UntilConnectedAsync(AsyncSmtpSession session)
    {
        for (var i = 0; i < 200 && !session.IsConnected; i++)
        {
            await Task.Delay(50);
        }

        session.IsConnected.Should().BeTrue("the TCP connect to 127.0.0.1 completes at once");
    }

    private static async Task<AsyncSmtpSession> SubmissionOverTlsAsync()
    {
        var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, Client);
        return session;
    }

    private static Task<SmtpReply> AuthAsync(AsyncSmtpSession session, string mechanism, string password) => mechanism switch
    {
        "LOGIN" => session.AuthLoginAsync(TestServers.User, password),
        "PLAIN" => session.AuthPlainAsync(TestServers.User, password),
        _ => session.AuthCramMd5Async(TestServers.User, password),
    };
}
