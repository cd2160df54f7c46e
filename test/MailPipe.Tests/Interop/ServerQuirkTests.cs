using System.Text;
using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Interop;

/// <summary>
/// Quirks of real-world servers, emulated with the scripted server: each is handled as RFC 5321/2920/3030/3463/4954
/// say, and a 4xx/5xx reply is returned, never thrown.
/// </summary>
public sealed class ServerQuirkTests
{
    private const string Content = SendScripts.SmallText;

    private static SmtpSessionOptions Cleartext => new() { AllowCleartextAuthentication = true };

    private static SmtpMessage Message(params string[] recipients) =>
        SmtpMessage.FromBytes(new SmtpEnvelope(SendScripts.Sender, recipients), Encoding.ASCII.GetBytes(Content));

    [Fact]
    public async Task A_multiline_220_greeting_is_one_reply_with_every_line()
    {
        await using var server = ScriptedSmtpServer.Start(
            "S: 220-mail.example.test ESMTP",
            "S: 220-No UCE",
            "S: 220 ready",
            "C: EHLO client.example.test",
            "S: 250 mail.example.test");
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();
        var ehlo = await session.EhloAsync("client.example.test").Safe();

        greeting!.Code.Should().Be(220);
        greeting.Lines.Should().Equal("mail.example.test ESMTP", "No UCE", "ready");
        ehlo.Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_greeting_whose_last_line_comes_late_gets_EHLO_only_after_it_as_postscreen_requires()
    {
        var firstLineRead = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        var script = new SmtpScript()
            .Send("220-mail.example.test ESMTP (pregreet test)")
            .Signal(firstLineRead)
            .WaitFor(release.Task)
            .Send("220 mail.example.test ready")
            .Expect("EHLO client.example.test", ClientArrival.AfterReplies)
            .Send("250 mail.example.test");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();

        var connect = session.ConnectAsync(server.ClientStream);
        await firstLineRead.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        connect.IsCompleted.Should().BeFalse("the greeting is not complete");
        release.SetResult();
        (await connect.Safe())!.Lines.Should().HaveCount(2);
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);

        await server.WaitAsync();
    }

    [Fact]
    public async Task Lower_case_capabilities_are_recognised()
    {
        await using var server = ScriptedSmtpServer.Start(SendScripts.Ehlo("pipelining", "size 1000", "auth login plain", "8bitmime", "enhancedstatuscodes", "chunking"));
        using var session = await SendScripts.ConnectedAsync(server);

        var capabilities = session.Capabilities;

        capabilities.SupportsPipelining.Should().BeTrue();
        capabilities.MaxMessageSize.Should().Be(1000);
        capabilities.AuthenticationMechanisms.Should().BeEquivalentTo("LOGIN", "PLAIN");
        capabilities.Supports8BitMime.Should().BeTrue();
        capabilities.SupportsEnhancedStatusCodes.Should().BeTrue();
        capabilities.SupportsChunking.Should().BeTrue();
    }

    [Theory]
    [InlineData("AUTH=LOGIN PLAIN")]
    [InlineData("AUTH=LOGIN")]
    public async Task The_old_Outlook_AUTH_equals_form_alone_gives_the_mechanisms(string line)
    {
        await using var server = ScriptedSmtpServer.Start(SendScripts.Ehlo("PIPELINING", line));
        using var session = await SendScripts.ConnectedAsync(server);

        session.Capabilities.AuthenticationMechanisms.Should().Contain("LOGIN");
        if (line.Contains("PLAIN", StringComparison.Ordinal))
        {
            session.Capabilities.AuthenticationMechanisms.Should().Contain("PLAIN");
        }
    }

    /// <summary>
    /// smtp4dev 3.15 (Rnwood.SmtpServer) started with a maximum message size advertises it as <c>SIZE=1048576</c>, in
    /// the pre-standard form of <c>AUTH=</c>, instead of RFC 1870's <c>SIZE 1048576</c>. MailPipe took the line for an
    /// unknown extension: a 3 MiB message went out whole and was refused with 552 after its end of data, where against
    /// any other server with a limit it is NotSent (MessageTooLarge) before MAIL.
    /// </summary>
    [Fact]
    public async Task Smtp4devs_SIZE_equals_limit_stops_a_larger_message_before_MAIL_and_is_declared_for_a_smaller_one()
    {
        const string small = "Subject: hi\r\n\r\nbody\r\n";
        var script = SmtpScript.Parse([
            "S: 220 localhost smtp4dev ready",
            "C: EHLO client.example.test",
            "S: 250-Nice to meet you.",
            "S: 250-8BITMIME",
            "S: 250-SIZE=1048576",
            "S: 250-SMTPUTF8",
            "S: 250-AUTH=CRAM-MD5 PLAIN LOGIN",
            "S: 250 AUTH CRAM-MD5 PLAIN LOGIN",
            "C: MAIL FROM:<sender@example.test> SIZE=21",
            "S: 250 New message started",
            "C: RCPT TO:<a@example.test>",
            "S: 250 Recipient accepted",
            "C: DATA",
            "S: 354 End message with period",
            .. SendScripts.DataLines(small),
            "S: 250 Mail accepted",
        ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);
        session.Capabilities.MaxMessageSize.Should().Be(1048576);

        var large = await session.SendAsync(new SmtpEnvelope(SendScripts.Sender, "a@example.test"), new byte[3 * 1024 * 1024]).Safe();
        var accepted = await session.SendAsync(new SmtpEnvelope(SendScripts.Sender, "a@example.test"), SendScripts.Ascii(small)).Safe();

        large.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        large.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        accepted.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Both_AUTH_forms_together_give_each_mechanism_once()
    {
        await using var server = ScriptedSmtpServer.Start(SendScripts.Ehlo("AUTH LOGIN PLAIN CRAM-MD5", "AUTH=LOGIN PLAIN"));
        using var session = await SendScripts.ConnectedAsync(server);

        session.Capabilities.AuthenticationMechanisms.Should().BeEquivalentTo("LOGIN", "PLAIN", "CRAM-MD5");
    }

    [Fact]
    public async Task Mechanisms_spread_over_several_AUTH_lines_are_all_offered_once_each()
    {
        await using var server = ScriptedSmtpServer.Start(SendScripts.Ehlo("AUTH GSSAPI NTLM", "AUTH LOGIN", "AUTH=LOGIN PLAIN"));
        using var session = await SendScripts.ConnectedAsync(server);

        session.Capabilities.AuthenticationMechanisms.Should().Equal("GSSAPI", "NTLM", "LOGIN", "PLAIN");
    }

    [Fact]
    public async Task Duplicate_keywords_do_not_break_the_EHLO_reply()
    {
        await using var server = ScriptedSmtpServer.Start(SendScripts.Ehlo("PIPELINING", "SIZE 1000", "PIPELINING", "SIZE 2000", "8BITMIME"));
        using var session = await SendScripts.ConnectedAsync(server);

        session.Capabilities.SupportsPipelining.Should().BeTrue();
        session.Capabilities.Supports8BitMime.Should().BeTrue();
        session.Capabilities.MaxMessageSize.Should().Be(1000, "the first line of a keyword is the one read");
        session.Capabilities.Count.Should().Be(5, "every line is kept in Items");
    }

    [Theory]
    [InlineData("SIZE")]
    [InlineData("SIZE 0")]
    public async Task SIZE_without_a_limit_reads_as_0_and_refuses_nothing_locally(string size)
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING", size),
            "C: MAIL FROM:<sender@example.test> SIZE=" + Content.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "C+ RCPT TO:<a@example.test>",
            "C+ DATA",
            "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(SendScripts.DataLines(Content))
            .Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var result = await session.SendAsync(Message("a@example.test")).Safe();

        session.Capabilities.MaxMessageSize.Should().Be(0, "RFC 1870 §4: no fixed limit");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Replies_split_at_arbitrary_bytes_are_put_back_together()
    {
        var script = new SmtpScript()
            .SendPieces("2", "20 mail.exa", "mple.test\r", "\n")
            .Expect("EHLO client.example.test")
            .SendPieces("250-mail.example.test\r\n25", "0-PIPEL", "INING\r\n250 ", "8BITMIME\r", "\n")
            .Expect("MAIL FROM:<sender@example.test>")
            .Expect("RCPT TO:<a@example.test>", ClientArrival.WithPrevious)
            .Expect("DATA", ClientArrival.WithPrevious)
            .SendPieces("250 2.1.0 o", "k\r\n250", " 2.1.5 ok\r\n3", "54 go\r\n")
            .Then(SendScripts.DataLines(Content))
            .SendPieces("250-2.0.0 ok\r\n250 2.0.0 queued as ", "ABC\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var result = await session.SendAsync(Message("a@example.test")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.FinalReply!.Lines.Should().Equal("2.0.0 ok", "2.0.0 queued as ABC");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_452_too_many_recipients_leaves_the_accepted_ones_delivered_and_says_which_to_resend()
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING", "ENHANCEDSTATUSCODES"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ RCPT TO:<b@example.test>",
            "C+ RCPT TO:<c@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 250 2.1.5 ok", "S: 452 4.5.3 Too many recipients", "S: 354 go")
            .Then(SendScripts.DataLines(Content))
            .Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var result = await session.SendAsync(Message("a@example.test", "b@example.test", "c@example.test")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal("a@example.test", "b@example.test");
        var refused = result.RefusedRecipients.Should().ContainSingle().Subject;
        refused.Recipient.Address.Should().Be("c@example.test");
        refused.Reply!.Code.Should().Be(452);
        refused.Reply.IsTransientNegative.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_421_after_the_greeting_is_returned_from_EHLO_and_the_session_is_closed()
    {
        await using var server = ScriptedSmtpServer.Start(
            SendScripts.Greeting,
            "C: EHLO client.example.test",
            "S: 421 4.3.2 Service shutting down",
            "CLOSE");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var reply = await session.EhloAsync("client.example.test").Safe();

        reply.Code.Should().Be(421);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_sender_facing_a_421_after_the_greeting_reports_the_message_NotSent_and_transient()
    {
        await using var server = ScriptedSmtpServer.Start(
            SendScripts.Greeting,
            "C: EHLO client.example.test",
            "S: 421 4.3.2 Service shutting down",
            "CLOSE");
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            Name = "quirk",
            EhloName = "client.example.test",
            MaxConnections = 1,
        });

        var result = await sender.SendAsync(Message("a@example.test")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        server.ReceivedText.Should().NotContain("MAIL FROM");
    }

    [Fact]
    public async Task The_334_with_an_empty_challenge_gets_the_credentials()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo("AUTH PLAIN"),
            "C: AUTH PLAIN",
            "S: 334 ",
            "C: " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0user\0secret")),
            "S: 235 Authentication successful"]);
        using var session = await SendScripts.ConnectedAsync(server, Cleartext);

        var reply = await session.AuthenticateAsync("PLAIN", initialResponse: null, (challenge, _) =>
        {
            challenge.Length.Should().Be(0);
            return ValueTask.FromResult<ReadOnlyMemory<byte>?>(Encoding.UTF8.GetBytes("\0user\0secret"));
        }).Safe();

        reply.Code.Should().Be(235);
        session.IsAuthenticated.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_334_without_the_trailing_space_is_an_empty_challenge()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo("AUTH LOGIN", "ENHANCEDSTATUSCODES"),
            "C: AUTH LOGIN",
            "S: 334",
            "C: " + Convert.ToBase64String(Encoding.UTF8.GetBytes("user")),
            "S: 334 UGFzc3dvcmQ6",
            "C: " + Convert.ToBase64String(Encoding.UTF8.GetBytes("secret")),
            "S: 235 Authentication successful"]);
        using var session = await SendScripts.ConnectedAsync(server, Cleartext);

        var reply = await session.AuthLoginAsync("user", "secret").Safe();

        reply.Code.Should().Be(235);
        reply.EnhancedStatusCode.Should().BeNull("the server gave none although it offers ENHANCEDSTATUSCODES");
        session.IsAuthenticated.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_challenge_that_is_not_base64_is_cancelled_or_fails_as_an_AuthenticationError()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(SendScripts.Ehlo("AUTH LOGIN"))
            .Then("C: AUTH LOGIN", "S: 334 not*base64!", "C: *", "S: 501 5.7.0 Authentication aborted", "C: NOOP", "S: 250 2.0.0 OK"));
        using var session = await SendScripts.ConnectedAsync(server, Cleartext);

        var act = () => session.AuthLoginAsync("user", "secret").Safe();

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Reply!.Code.Should().Be(501);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain(Convert.ToBase64String(Encoding.UTF8.GetBytes("secret")));
    }

    [Fact]
    public async Task A_multiline_final_reply_and_UTF8_text_are_kept_whole()
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ DATA",
            "S: 250 Absender ok – grüße", "S: 250 Empfänger ok", "S: 354 go")
            .Then(SendScripts.DataLines(Content))
            .Then("S: 250-2.0.0 Nachricht angenommen", "S: 250 2.0.0 queued as 日本");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var result = await session.SendAsync(Message("a@example.test")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.MailReply!.Text.Should().Be("Absender ok – grüße");
        result.FinalReply!.Lines.Should().HaveCount(2);
        result.FinalReply.Lines[1].Should().Be("2.0.0 queued as 日本");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_server_closing_right_after_221_ends_the_session_cleanly()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo(), "C: QUIT", "S: 221 bye", "CLOSE"]);
        using var session = await SendScripts.ConnectedAsync(server);

        var reply = await session.QuitAsync().Safe();

        reply.Code.Should().Be(221);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_server_closing_without_replying_to_QUIT_is_not_an_error_for_the_sender()
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ DATA",
            "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(SendScripts.DataLines(Content))
            .Then("S: 250 queued", "C: QUIT", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        SmtpSendResult result;
        await using (var sender = new SmtpSender(new SmtpSenderOptions
        {
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            Name = "quirk",
            EhloName = "client.example.test",
            MaxConnections = 1,
        }))
        {
            result = await sender.SendAsync(Message("a@example.test")).Safe();
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_server_closing_without_replying_to_QUIT_makes_the_raw_QuitAsync_throw_ConnectionClosed_and_close()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo(), "C: QUIT", "CLOSE"]);
        using var session = await SendScripts.ConnectedAsync(server);

        var act = () => session.QuitAsync().Safe();

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Pipelined_replies_that_arrive_one_at_a_time_long_after_each_other_are_paired_in_order()
    {
        var mailReplied = new TaskCompletionSource();
        var releaseRcpt = new TaskCompletionSource();
        var releaseData = new TaskCompletionSource();
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ RCPT TO:<b@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 sender ok")
            .Signal(mailReplied)
            .WaitFor(releaseRcpt.Task)
            .Then("S: 550 5.1.1 a unknown")
            .WaitFor(releaseData.Task)
            .Then("S: 250 2.1.5 b ok", "S: 354 go")
            .Then(SendScripts.DataLines(Content))
            .Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var send = session.SendAsync(Message("a@example.test", "b@example.test"));
        await mailReplied.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        releaseRcpt.SetResult();
        send.IsCompleted.Should().BeFalse("the replies to the second RCPT and DATA have not come");
        releaseData.SetResult();
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(550, 250);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal("b@example.test");
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_automatic_choice_authenticates_against_a_server_offering_only_the_AUTH_equals_form()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo("AUTH=LOGIN PLAIN"),
            "C: AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0user\0secret")),
            "S: 235 ok"]);
        using var session = await SendScripts.ConnectedAsync(server, Cleartext);

        var reply = await session.AuthenticateAsync(new System.Net.NetworkCredential("user", "secret")).Safe();

        reply.Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("PLAIN");
        await server.WaitAsync();
    }
}
