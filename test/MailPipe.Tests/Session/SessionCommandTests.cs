using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

public class SessionCommandTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(server.ClientStream).Safe();
        return session;
    }

    [Fact]
    public async Task Connect_reads_the_greeting()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting);
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Code.Should().Be(220);
        greeting.Text.Should().Be("mail.example.test ESMTP ready");
        session.Greeting.Should().BeSameAs(greeting);
        session.LastReply.Should().BeSameAs(greeting);
        session.State.Should().Be(SmtpSessionState.Connected);
        session.IsConnected.Should().BeTrue();
        session.Host.Should().BeNull();
        session.PendingReplyCount.Should().Be(0);
        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Connect_without_waiting_then_ReceiveReplyAsync_reads_the_greeting()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting);
        using var session = new AsyncSmtpSession();

        var none = await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe();

        none.Should().BeNull();
        session.State.Should().Be(SmtpSessionState.Connected);
        session.Greeting.Should().BeNull();
        session.PendingReplyCount.Should().Be(1, "the greeting is due");

        var greeting = await session.ReceiveReplyAsync().Safe();

        greeting.Code.Should().Be(220);
        session.Greeting.Should().BeSameAs(greeting);
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Greeting_split_into_arbitrary_pieces_is_reassembled()
    {
        var script = new SmtpScript().SendPieces("2", "20-mail.exa", "mple.test ESMTP\r", "\n220-", "second line\r\n22", "0 ready", "\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Lines.Should().Equal("mail.example.test ESMTP", "second line", "ready");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Negative_greeting_is_returned_not_thrown()
    {
        await using var server = ScriptedSmtpServer.Start("S: 554 5.7.1 No service for you");
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Code.Should().Be(554);
        greeting.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 7, 1));
        session.State.Should().Be(SmtpSessionState.Connected, "RFC 5321 §3.1: after 554 the client may still send QUIT");
    }

    [Fact]
    public async Task Greeting_421_is_returned_and_the_session_disconnects()
    {
        await using var server = ScriptedSmtpServer.Start("S: 421 4.3.2 Too busy", "EXPECT CLOSE");
        using var session = new AsyncSmtpSession();

        var greeting = await session.ConnectAsync(server.ClientStream).Safe();

        greeting!.Code.Should().Be(421);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Greeting_421_read_with_ReceiveReplyAsync_disconnects_too()
    {
        await using var server = ScriptedSmtpServer.Start("S: 421 4.3.2 Too busy", "EXPECT CLOSE");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe();

        var greeting = await session.ReceiveReplyAsync().Safe();

        greeting.Code.Should().Be(421);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Ehlo_stores_the_capabilities()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: EHLO client.example.test",
            "S: 250-mail.example.test greets client.example.test",
            "S: 250-PIPELINING",
            "S: 250-SIZE 10240000",
            "S: 250-8BITMIME",
            "S: 250-AUTH PLAIN LOGIN",
            "S: 250 ENHANCEDSTATUSCODES");
        using var session = await ConnectedAsync(server);

        var reply = await session.EhloAsync("client.example.test").Safe();

        reply.Code.Should().Be(250);
        reply.Lines.Should().HaveCount(6);
        session.Capabilities.Domain.Should().Be("mail.example.test");
        session.Capabilities.Items.Select(c => c.Keyword).Should().Equal("PIPELINING", "SIZE", "8BITMIME", "AUTH", "ENHANCEDSTATUSCODES");
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        session.Capabilities.MaxMessageSize.Should().Be(10240000);
        session.Capabilities.AuthenticationMechanisms.Should().Equal("PLAIN", "LOGIN");
        session.LastReply.Should().BeSameAs(reply);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Ehlo_refused_then_Helo()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: EHLO [192.0.2.1]",
            "S: 502 5.5.1 Command not implemented",
            "C: HELO [192.0.2.1]",
            "S: 250 mail.example.test");
        using var session = await ConnectedAsync(server);

        var ehlo = await session.EhloAsync("[192.0.2.1]").Safe();

        ehlo.Code.Should().Be(502);
        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
        session.State.Should().Be(SmtpSessionState.Connected);

        var helo = await session.HeloAsync("[192.0.2.1]").Safe();

        helo.Code.Should().Be(250);
        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Helo_clears_capabilities_from_an_earlier_Ehlo()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: EHLO client",
            "S: 250-mx",
            "S: 250 PIPELINING",
            "C: HELO client",
            "S: 250 mx");
        using var session = await ConnectedAsync(server);
        await session.EhloAsync("client").Safe();
        session.Capabilities.SupportsPipelining.Should().BeTrue();

        await session.HeloAsync("client").Safe();

        session.Capabilities.Should().BeSameAs(SmtpCapabilities.None);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Mail_from_with_parameters()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test> SIZE=1024 BODY=8BITMIME",
            "S: 250 2.1.0 Sender ok");
        using var session = await ConnectedAsync(server);

        var reply = await session.MailFromAsync("sender@example.test", "SIZE=1024 BODY=8BITMIME").Safe();

        reply.Code.Should().Be(250);
        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 1, 0));
        reply.Text.Should().Be("Sender ok");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("")]
    [InlineData("<>")]
    public async Task Mail_from_the_null_reverse_path(string reversePath)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: MAIL FROM:<>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync(reversePath).Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Rcpt_to_with_and_without_parameters()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: RCPT TO:<one@example.test>",
            "S: 250 2.1.5 ok",
            "C: RCPT TO:<two@example.test> NOTIFY=SUCCESS,FAILURE",
            "S: 251 2.1.5 will forward");
        using var session = await ConnectedAsync(server);

        (await session.RcptToAsync("<one@example.test>").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("two@example.test", "NOTIFY=SUCCESS,FAILURE").Safe()).Code.Should().Be(251);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Rset_Noop_and_Vrfy()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: RSET",
            "S: 250 2.0.0 Flushed",
            "C: NOOP",
            "S: 250 2.0.0 Ok",
            "C: VRFY postmaster",
            "S: 252 2.1.5 Cannot VRFY user");
        using var session = await ConnectedAsync(server);

        (await session.RsetAsync().Safe()).Text.Should().Be("Flushed");
        (await session.NoopAsync().Safe()).Text.Should().Be("Ok");
        var vrfy = await session.VrfyAsync("postmaster").Safe();

        vrfy.Code.Should().Be(252);
        vrfy.Text.Should().Be("Cannot VRFY user");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Quit_reads_the_reply_and_closes_the_connection()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: QUIT", "S: 221 2.0.0 Bye", "EXPECT CLOSE");
        using var session = await ConnectedAsync(server);

        var reply = await session.QuitAsync().Safe();

        reply.Code.Should().Be(221);
        session.State.Should().Be(SmtpSessionState.Disconnected);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ClientClosed.Should().BeTrue();
        server.ClientStream.IsDisposed.Should().BeTrue();
    }

    [Fact]
    public async Task DisposeAsync_sends_quit_when_connected_and_idle()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: QUIT", "S: 221 Bye", "EXPECT CLOSE");
        var session = await ConnectedAsync(server);

        await session.DisposeAsync().Safe();

        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Dispose_closes_without_quit()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "EXPECT CLOSE");
        var session = await ConnectedAsync(server);

        session.Dispose();

        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task DisconnectAsync_closes_without_quit_and_the_session_can_connect_again()
    {
        await using var first = ScriptedSmtpServer.Start(Greeting, "EXPECT CLOSE");
        await using var second = ScriptedSmtpServer.Start("S: 220 second", "C: NOOP", "S: 250 ok");
        using var session = await ConnectedAsync(first);

        await session.DisconnectAsync().Safe();

        session.State.Should().Be(SmtpSessionState.Disconnected);
        await first.WaitAsync();
        (await session.ConnectAsync(second.ClientStream).Safe())!.Text.Should().Be("second");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await second.WaitAsync();
    }

    [Fact]
    public async Task Negative_replies_are_returned_and_the_session_stays_usable()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>",
            "S: 451 4.3.0 Try again later",
            "C: MAIL FROM:<sender@example.test>",
            "S: 250 ok",
            "C: RCPT TO:<nobody@example.test>",
            "S: 550 5.1.1 No such user",
            "C: RCPT TO:<somebody@example.test>",
            "S: 250 ok",
            "C: RSET",
            "S: 250 ok");
        using var session = await ConnectedAsync(server);

        var mail = await session.MailFromAsync("sender@example.test").Safe();
        mail.Code.Should().Be(451);
        mail.IsTransientNegative.Should().BeTrue();
        mail.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(4, 3, 0));

        (await session.MailFromAsync("sender@example.test").Safe()).Code.Should().Be(250);

        var rcpt = await session.RcptToAsync("nobody@example.test").Safe();
        rcpt.Code.Should().Be(550);
        rcpt.IsPermanentNegative.Should().BeTrue();
        rcpt.Text.Should().Be("No such user");
        session.State.Should().Be(SmtpSessionState.Connected);

        (await session.RcptToAsync("somebody@example.test").Safe()).Code.Should().Be(250);
        (await session.RsetAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Reply_421_is_returned_and_the_session_is_then_disconnected()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>",
            "S: 421 4.3.2 Service shutting down",
            "EXPECT CLOSE");
        using var session = await ConnectedAsync(server);

        var reply = await session.MailFromAsync("sender@example.test").Safe();

        reply.Code.Should().Be(421);
        reply.IsServiceClosing.Should().BeTrue();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        var next = () => session.NoopAsync();
        await next.Should().ThrowAsync<InvalidOperationException>();
    }

    [Fact]
    public async Task Reply_421_to_a_raw_command_disconnects_too()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: XFOO", "S: 421 bye", "EXPECT CLOSE");
        using var session = await ConnectedAsync(server);
        await session.SendCommandAsync("XFOO").Safe();

        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(421);

        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Data_with_message_chunks_sends_dot_stuffed_CRLF_text_and_the_end_of_data()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>",
            "S: 250 ok",
            "C: RCPT TO:<rcpt@example.test>",
            "S: 250 ok",
            "C: DATA",
            "S: 354 End data with <CR><LF>.<CR><LF>",
            "C: Subject: hi",
            "C: ",
            "C: ..leading dot",
            "C: ..",
            "C: bare CR line",
            "C: last line without newline",
            "C: .",
            "S: 250 2.0.0 Ok: queued as 12345");
        using var session = await ConnectedAsync(server);
        await session.MailFromAsync("sender@example.test").Safe();
        await session.RcptToAsync("rcpt@example.test").Safe();

        var data = await session.DataAsync().Safe();
        data.Code.Should().Be(354);
        session.State.Should().Be(SmtpSessionState.SendingData);

        foreach (var chunk in new[] { "Subject: hi\r", "\n\n.leading dot\n", ".", "\r\nbare CR line\r", "last line without newline" })
        {
            await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(chunk)).Safe();
        }

        var reply = await session.EndMessageDataAsync().Safe();

        reply.Code.Should().Be(250);
        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 0, 0));
        session.State.Should().Be(SmtpSessionState.Connected);
        await server.WaitAsync();
        server.ReceivedText.Should().EndWith(
            "DATA\r\nSubject: hi\r\n\r\n..leading dot\r\n..\r\nbare CR line\r\nlast line without newline\r\n.\r\n");
    }

    [Fact]
    public async Task Data_refused_is_returned_and_no_data_mode_is_entered()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: DATA", "S: 554 5.5.1 No valid recipients", "C: RSET", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.DataAsync().Safe()).Code.Should().Be(554);

        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.RsetAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    public static TheoryData<string> ContentKinds() => ["memory", "sequence", "stream", "pipe"];

    [Theory]
    [MemberData(nameof(ContentKinds))]
    public async Task SendMessageDataAsync_from_every_source(string kind)
    {
        const string Message = "From: a@example.test\nSubject: t\n\n.hidden\n.\nend";
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: DATA",
            "S: 354 go",
            "C: From: a@example.test",
            "C: Subject: t",
            "C: ",
            "C: ..hidden",
            "C: ..",
            "C: end",
            "C: .",
            "S: 250 queued",
            "C: NOOP",
            "S: 250 ok");
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();
        var bytes = Encoding.ASCII.GetBytes(Message);

        var reply = kind switch
        {
            "memory" => await session.SendMessageDataAsync(bytes.AsMemory()).Safe(),
            "sequence" => await session.SendMessageDataAsync(ReadOnlySequenceFactory.Chunked(bytes, [1, 3, 20, 2, 5])).Safe(),
            "stream" => await session.SendMessageDataAsync(new MemoryStream(bytes)).Safe(),
            _ => await SendFromPipeAsync(session, bytes),
        };

        reply.Code.Should().Be(250);
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    private static async Task<SmtpReply> SendFromPipeAsync(AsyncSmtpSession session, byte[] bytes)
    {
        var pipe = new Pipe();
        var sending = session.SendMessageDataAsync(pipe.Reader);
        for (var offset = 0; offset < bytes.Length; offset += 7)
        {
            await pipe.Writer.WriteAsync(bytes.AsMemory(offset, Math.Min(7, bytes.Length - offset)));
        }

        await pipe.Writer.CompleteAsync();
        return await sending.Safe();
    }

    [Fact]
    public async Task Large_message_is_flushed_in_blocks_and_arrives_whole()
    {
        var line = new string('x', 998);
        var body = string.Concat(Enumerable.Repeat(line + "\r\n", 300));
        await using var server = ScriptedSmtpServer.Start(
            new SmtpScript().Then(Greeting, "C: DATA", "S: 354 go").ExpectRaw(body + ".\r\n").Send("250 ok"));
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 4096 });
        await session.DataAsync().Safe();

        var reply = await session.SendMessageDataAsync(new MemoryStream(Encoding.ASCII.GetBytes(body))).Safe();

        reply.Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendCommandAsync_and_ReceiveReplyAsync_for_an_unknown_command()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: XFOO bar baz",
            "S: 250 2.0.0 foo done",
            "C: XBAR",
            "S: 500 5.5.2 unknown");
        using var session = await ConnectedAsync(server);

        await session.SendCommandAsync("XFOO bar baz").Safe();
        session.PendingReplyCount.Should().Be(1);
        var foo = await session.ReceiveReplyAsync().Safe();
        session.PendingReplyCount.Should().Be(0);
        await session.SendCommandAsync("XBAR\r\n").Safe();
        var bar = await session.ReceiveReplyAsync().Safe();

        foo.Code.Should().Be(250);
        foo.Text.Should().Be("foo done");
        bar.Code.Should().Be(500);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Pipelined_commands_and_replies_in_one_buffer()
    {
        var script = new SmtpScript()
            .Then(Greeting, "C: MAIL FROM:<a@example.test>", "C: RCPT TO:<b@example.test>", "C: RCPT TO:<c@example.test>", "C: DATA")
            .SendRaw("250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no such user\r\n354 go ahead\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await session.SendCommandAsync("MAIL FROM:<a@example.test>").Safe();
        await session.SendCommandAsync("RCPT TO:<b@example.test>").Safe();
        await session.SendCommandAsync("RCPT TO:<c@example.test>").Safe();
        await session.SendCommandAsync("DATA").Safe();
        session.PendingReplyCount.Should().Be(4);

        var codes = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            codes.Add((await session.ReceiveReplyAsync().Safe()).Code);
        }

        codes.Should().Equal(250, 250, 550, 354);
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendBytesAsync_sends_bytes_exactly()
    {
        var script = new SmtpScript().Then(Greeting).ExpectRaw("NOOP\r\nRSET\r\n").SendRaw("250 ok\r\n250 flushed\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await session.SendBytesAsync("NOOP\r\nRSET\r\n"u8.ToArray()).Safe();

        (await session.ReceiveReplyAsync().Safe()).Text.Should().Be("ok");
        (await session.ReceiveReplyAsync().Safe()).Text.Should().Be("flushed");
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendBytesAsync_in_data_mode_is_not_stuffed_and_EndMessageDataAsync_ends_it()
    {
        var script = new SmtpScript()
            .Then(Greeting, "C: DATA", "S: 354 go")
            .ExpectRaw("Subject: raw\r\n\r\n..already stuffed\r\n.\r\n")
            .Send("250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        await session.DataAsync().Safe();

        await session.SendBytesAsync("Subject: raw\r\n\r\n..already stuffed\r\n"u8.ToArray()).Safe();
        var reply = await session.EndMessageDataAsync().Safe();

        reply.Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Replies_to_different_commands_in_a_row_keep_LastReply_current()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 one", "C: NOOP", "S: 250 two");
        using var session = await ConnectedAsync(server);

        await session.NoopAsync().Safe();
        var second = await session.NoopAsync().Safe();

        session.LastReply.Should().BeSameAs(second);
        second.Text.Should().Be("two");
        await server.WaitAsync();
    }
}

public sealed class RawDataEdgeTests
{
    private const string Greeting = "S: 220 mx ESMTP";

    [Fact]
    public async Task Raw_bytes_without_a_final_line_end_inside_DATA_get_one_before_the_end_of_data()
    {
        var script = new SmtpScript()
            .Then(Greeting, "C: DATA", "S: 354 go")
            .ExpectRaw("Subject: raw\r\n\r\nno line end\r\n.\r\n")
            .Send("250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();

        await session.SendBytesAsync("Subject: raw\r\n\r\nno line end"u8.ToArray()).Safe();
        (await session.EndMessageDataAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_reply_read_during_DATA_ends_the_data_phase()
    {
        var script = new SmtpScript()
            .Then(Greeting, "C: DATA", "S: 354 go")
            .ExpectRaw("x\r\n.\r\n")
            .Send("250 ok")
            .Then("C: NOOP", "S: 250 still here");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.DataAsync().Safe();

        await session.SendBytesAsync("x\r\n.\r\n"u8.ToArray()).Safe();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(250);
        session.State.Should().Be(SmtpSessionState.Connected);
        (await session.NoopAsync().Safe()).Text.Should().Be("still here");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Greeting_read_after_a_command_was_sent_is_still_the_greeting()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 noop");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe();

        await session.SendCommandAsync("NOOP").Safe();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(220);
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(250);

        session.Greeting!.Code.Should().Be(220);
        await server.WaitAsync();
    }
}
