using System.Text;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Core;

/// <summary>
/// A peer's tests of the seed's command-by-command flow (README, "The seed's SmtpClient, member by member") against the
/// real servers: odd splits of WriteMessageDataAsync stored byte for byte, QUIT then ConnectAsync on the same object, RSET
/// between transactions, the reply accessors.
/// </summary>
public sealed class Breaker15SessionCommandTests
{
    private static readonly string[] Parts =
    [
        "From: sender@example.test\r\nTo: someone@example.test\r\nDate: Sun, 06 Dec 2026 21:00:00 +0000\r\n",
        "Message-ID: <brk15-split@example.test>\r\nSubject: odd splits\r",      // CR at the end of one write ...
        "\n",                                                                  // ... LF at the start of the next
        string.Empty,                                                          // an empty write
        "\r\nbody line one\r\n",
        ".leading dot after a line end in the previous write\r\n",
        ".",                                                                   // a lone '.' line, split from its CRLF
        "\r",
        "\nline after the lone dot\r\n",
        string.Empty,
        "..two dots\r\nx\r",
        "\n.",                                                                 // LF ends a line, '.' starts the next
        "\r\n",
        "last line without a line end",
    ];

    public Breaker15SessionCommandTests() => TestServers.RequireListening(TestServers.PostfixPort);

    private static byte[] Whole => Encoding.ASCII.GetBytes(string.Concat(Parts));

    private static byte[] Expected => Corpus.NormalizeLineEnds(Encoding.ASCII.GetBytes(string.Concat(Parts) + "\r\n"));

    private static async Task<SmtpReply> WriteOddSplitsAsync(AsyncSmtpSession session)
    {
        foreach (var part in Parts)
        {
            await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(part));
        }

        return await session.EndMessageDataAsync();
    }

    [Fact]
    public async Task Odd_splits_of_WriteMessageDataAsync_are_stored_byte_for_byte_by_Postfix()
    {
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);

        var final = await WriteOddSplitsAsync(session);
        final.Code.Should().Be(250, final.ToString());
        final.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 0, 0));
        session.LastReply.Should().Be(final);
        (await session.QuitAsync()).Code.Should().Be(221);

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored)).Should().Be(Encoding.ASCII.GetString(Expected));
    }

    [Fact]
    public async Task Odd_splits_of_WriteMessageDataAsync_are_stored_byte_for_byte_by_aiosmtpd()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort);
        (await session.HelloAsync("client.example.test")).Code.Should().Be(250);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        (await WriteOddSplitsAsync(session)).Code.Should().Be(250);
        await session.QuitAsync();

        var stored = await AiosmtpdStore.WaitForAsync(recipient);
        Encoding.ASCII.GetString(stored).Should().Be(Encoding.ASCII.GetString(Expected));
    }

    [Fact]
    public async Task The_same_content_in_one_write_is_stored_like_the_odd_splits()
    {
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await InPostfixDataAsync(session, recipient);
        await session.WriteMessageDataAsync(Whole);
        (await session.EndMessageDataAsync()).Code.Should().Be(250);
        await session.QuitAsync();

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored)).Should().Be(Encoding.ASCII.GetString(Expected));
    }

    [Fact]
    public async Task Quit_then_ConnectAsync_again_on_the_same_object_sends_a_second_message_with_fresh_capabilities()
    {
        var first = TestServers.UniqueRecipient();
        var second = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();

        foreach (var recipient in new[] { first, second })
        {
            var greeting = await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
            greeting!.Code.Should().Be(220);
            session.Greeting.Should().Be(greeting);
            session.Capabilities.Count.Should().Be(0, "no EHLO yet on this connection");
            (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
            session.Capabilities.SupportsPipelining.Should().BeTrue();
            (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
            (await session.RcptToAsync(recipient)).Code.Should().Be(250);
            (await session.DataAsync()).Code.Should().Be(354);
            (await session.SendMessageDataAsync(Encoding.ASCII.GetBytes("Subject: again\r\n\r\nto " + recipient + "\r\n"))).Code.Should().Be(250);
            var quit = await session.QuitAsync();
            quit.Code.Should().Be(221);
            quit.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 0, 0));
            session.IsConnected.Should().BeFalse();
            await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<InvalidOperationException>();
        }

        (await Maildir.WaitForPostfixAsync(first)).Should().HaveCount(1);
        (await Maildir.WaitForPostfixAsync(second)).Should().HaveCount(1);
    }

    [Fact]
    public async Task Rset_after_RCPT_abandons_the_transaction_and_the_next_one_is_the_only_one_stored()
    {
        var abandoned = TestServers.UniqueRecipient();
        var delivered = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(abandoned)).Code.Should().Be(250);
        var rset = await session.RsetAsync();
        rset.Code.Should().Be(250);
        rset.Text.Should().NotBeNull();

        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(delivered)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        (await session.SendMessageDataAsync(Encoding.ASCII.GetBytes("Subject: kept\r\n\r\nkept\r\n"))).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);

        (await Maildir.WaitForPostfixAsync(delivered)).Should().HaveCount(1);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, abandoned, "new")).Should().BeFalse("RSET abandoned that transaction");
    }

    [Fact]
    public async Task Data_without_a_transaction_is_refused_by_Postfix_and_returned_not_thrown_with_its_enhanced_status_code()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        var data = await session.DataAsync();
        data.Code.Should().Be(503, data.ToString());
        data.IsPermanentNegative.Should().BeTrue();
        data.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 5, 1));
        data.Text.Should().NotStartWith("5.5.1", "the enhanced status code is its own accessor");
        session.LastReply.Should().Be(data);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250, "a 503 to DATA leaves the session in command mode");
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
    }

    [Fact]
    public async Task Exim_and_aiosmtpd_answer_NOOP_VRFY_RSET_and_QUIT_through_the_typed_calls()
    {
        foreach (var port in new[] { TestServers.EximPort, TestServers.AiosmtpdPort })
        {
            TestServers.RequireListening(port);
            await using var session = new AsyncSmtpSession();
            (await session.ConnectAsync(TestServers.Host, port))!.Code.Should().Be(220);
            (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
            session.Capabilities.Count.Should().BeGreaterThan(0);
            session.Capabilities.Should().OnlyContain(c => !string.IsNullOrEmpty(c.Keyword));
            (await session.NoopAsync()).Code.Should().Be(250);
            var vrfy = await session.VrfyAsync("testuser@example.test");
            vrfy.Code.Should().BeOneOf([250, 251, 252, 502, 550, 551, 553], $"port {port}: {vrfy}");
            (await session.RsetAsync()).Code.Should().Be(250);
            (await session.QuitAsync()).Code.Should().Be(221);
            session.IsConnected.Should().BeFalse();
        }
    }

    [Fact]
    public async Task Connection_refused_on_a_closed_loopback_port_gives_errno_ECONNREFUSED_and_the_object_connects_afterwards()
    {
        int closedPort;
        using (var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            listener.Start();
            closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        await using var session = new AsyncSmtpSession();
        var error = (await FluentActions.Awaiting(() => session.ConnectAsync(TestServers.Host, closedPort)).Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        error.IsTransient.Should().BeTrue();
        error.SocketError.Should().Be(System.Net.Sockets.SocketError.ConnectionRefused);
        if (OperatingSystem.IsLinux())
        {
            error.OsErrorCode.Should().Be(111, "the documented OsErrorCode is errno on Linux (ECONNREFUSED)");
        }

        error.Message.Should().NotBeNullOrWhiteSpace();
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        (await session.QuitAsync()).Code.Should().Be(221);
    }

    [Fact]
    public async Task Cancelling_a_command_from_another_source_mid_DATA_closes_and_the_object_reconnects_to_Postfix()
    {
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await InPostfixDataAsync(session, recipient);
        await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes("Subject: cancelled\r\n\r\nnever ends\r\n"));

        using var other = new CancellationTokenSource();
        var stalled = session.ReceiveReplyAsync(other.Token);
        (await FluentActions.Awaiting(() => session.WriteMessageDataAsync(Encoding.ASCII.GetBytes("more\r\n"))).Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("one operation at a time");
        other.Cancel();
        await FluentActions.Awaiting(() => stalled).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        (await session.NoopAsync()).Code.Should().Be(250);
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, recipient, "new")).Should().BeFalse("the data was never ended");
    }

    [Fact]
    public async Task Capabilities_accessors_match_the_EHLO_reply_lines_of_each_real_server()
    {
        foreach (var port in new[] { TestServers.PostfixPort, TestServers.EximPort, TestServers.AiosmtpdPort })
        {
            TestServers.RequireListening(port);
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, port);
            var ehlo = await session.EhloAsync("client.example.test");
            ehlo.Code.Should().Be(250);
            ehlo.Lines.Count.Should().BeGreaterThan(1, $"port {port} advertises extensions");

            var capabilities = session.Capabilities;
            capabilities.Domain.Should().Be(ehlo.Lines[0].Split(' ')[0], $"port {port}");
            capabilities.Count.Should().Be(ehlo.Lines.Count - 1, $"port {port}: {string.Join(" | ", ehlo.Lines)}");
            for (var i = 0; i < capabilities.Count; i++)
            {
                capabilities[i].Line.Should().Be(ehlo.Lines[i + 1]);
                capabilities[i].Keyword.Should().BeEquivalentTo(ehlo.Lines[i + 1].Split(' ')[0].Split('=')[0], "the keyword is the line's first word");
                capabilities.Contains(capabilities[i].Keyword.ToLowerInvariant()).Should().BeTrue("HasCapability is case-insensitive");
            }

            capabilities.Select(c => c.Line).Should().Equal(ehlo.Lines.Skip(1), "foreach/LINQ in the server's order");
            capabilities.ToString().Should().Be(string.Join(", ", ehlo.Lines.Skip(1)));
            capabilities.Contains("XNOSUCHEXTENSION").Should().BeFalse();
            capabilities.SupportsPipelining.Should().Be(ehlo.Lines.Skip(1).Any(l => l.Equals("PIPELINING", StringComparison.OrdinalIgnoreCase)));
            await session.QuitAsync();
        }
    }

    [Fact]
    public async Task A_refused_recipient_s_text_accessor_leaves_out_the_code_and_the_enhanced_status_code()
    {
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        await session.MailFromAsync("sender@example.test");
        var refused = await session.RcptToAsync("unknown-user@example.test");
        refused.Code.Should().Be(550);
        refused.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 1));
        refused.Lines[0].Should().StartWith("5.1.1 ");
        refused.Text.Should().Be(refused.Lines[0]["5.1.1 ".Length..]);
        refused.Text.Should().NotStartWith("550").And.NotStartWith("5.1.1");
        session.LastReply.Should().BeSameAs(refused);
    }

    [Fact]
    public async Task Odd_splits_with_bare_LF_and_bare_CR_are_accepted_and_stored_byte_for_byte_by_Postfix_forbidding_bare_newlines()
    {
        var port = TestServers.PostfixStrictNewlinePort;
        TestServers.RequireListening(port);
        string[] writes =
        [
            "From: sender@example.test\nTo: someone@example.test\nDate: Sun, 06 Dec 2026 21:00:00 +0000\n",
            "Message-ID: <brk15-strict@example.test>\nSubject: bare line ends\r",
            "\n\nLF line\n.",
            "\nbare CR line\r.dot after a bare CR\r",
            string.Empty,
            "\r\nend",
        ];
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, port);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);
        (await session.MailFromAsync("sender@example.test")).Code.Should().Be(250);
        (await session.RcptToAsync(recipient)).Code.Should().Be(250);
        (await session.DataAsync()).Code.Should().Be(354);
        foreach (var write in writes)
        {
            await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(write));
        }

        var final = await session.EndMessageDataAsync();
        final.Code.Should().Be(250, $"no bare LF or CR reaches the server: {final}");
        (await session.QuitAsync()).Code.Should().Be(221);

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored)).Should().Be(
            "From: sender@example.test\r\nTo: someone@example.test\r\nDate: Sun, 06 Dec 2026 21:00:00 +0000\r\n"
            + "Message-ID: <brk15-strict@example.test>\r\nSubject: bare line ends\r\n\r\nLF line\r\n.\r\n"
            + "bare CR line\r\n.dot after a bare CR\r\n\r\nend\r\n");
    }

    [Fact]
    public async Task Postfix_idle_421_read_with_ReceiveReplyAsync_closes_the_session_and_the_object_connects_again()
    {
        TestServers.RequireListening(TestServers.PostfixIdlePort);
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ReceiveTimeout = TimeSpan.FromSeconds(60) });
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixIdlePort);
        (await session.EhloAsync("client.example.test")).Code.Should().Be(250);

        var closing = await session.ReceiveReplyAsync();   // smtpd_timeout = 2s: the server's own 421 is the event awaited
        closing.Code.Should().Be(421);
        closing.IsServiceClosing.Should().BeTrue();
        closing.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(4, 4, 2));
        session.IsConnected.Should().BeFalse("a 421 closes the connection");
        await FluentActions.Awaiting(() => session.NoopAsync()).Should().ThrowAsync<InvalidOperationException>();

        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort))!.Code.Should().Be(220);
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    [Fact]
    public async Task SendBytesAsync_with_CR_and_LF_in_separate_calls_then_EndMessageDataAsync_is_stored_without_an_extra_line()
    {
        TestServers.RequireListening(TestServers.PostfixStrictNewlinePort);
        var recipient = TestServers.UniqueRecipient();
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixStrictNewlinePort);
        await session.EhloAsync("client.example.test");
        await session.MailFromAsync("sender@example.test");
        await session.RcptToAsync(recipient);
        (await session.DataAsync()).Code.Should().Be(354);
        await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes("From: sender@example.test\nTo: someone@example.test\nDate: Sun, 06 Dec 2026 21:00:00 +0000\nMessage-ID: <brk15-raw@example.test>\nSubject: raw\n\nencoded line\nraw line"));
        await session.SendBytesAsync(Encoding.ASCII.GetBytes("\r"));
        await session.SendBytesAsync(Encoding.ASCII.GetBytes("\n"));
        await session.SendBytesAsync(Encoding.ASCII.GetBytes("raw CR then encoded LF\r"));
        await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes("\n.last"));
        await session.SendBytesAsync(Encoding.ASCII.GetBytes("\r"));
        await session.SendBytesAsync(Encoding.ASCII.GetBytes("\n"));
        var final = await session.EndMessageDataAsync();
        final.Code.Should().Be(250, final.ToString());
        await session.QuitAsync();

        var stored = (await Maildir.WaitForPostfixAsync(recipient))[0];
        Encoding.ASCII.GetString(Maildir.StripTraceHeaders(stored)).Should().Be(
            "From: sender@example.test\r\nTo: someone@example.test\r\nDate: Sun, 06 Dec 2026 21:00:00 +0000\r\nMessage-ID: <brk15-raw@example.test>\r\nSubject: raw\r\n\r\n"
            + "encoded line\r\nraw line\r\nraw CR then encoded LF\r\n.last\r\n");
    }

    /// <summary>Connects <paramref name="session"/> to Postfix and opens a transaction to <paramref name="recipient"/> up to DATA's 354.</summary>
    private static async Task InPostfixDataAsync(AsyncSmtpSession session, string recipient)
    {
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort);
        await session.EhloAsync("client.example.test");
        await session.MailFromAsync("sender@example.test");
        await session.RcptToAsync(recipient);
        (await session.DataAsync()).Code.Should().Be(354);
    }
}
