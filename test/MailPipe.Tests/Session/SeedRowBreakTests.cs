using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>Breaker13: rows of the README's seed table, through the public API only.</summary>
public class SeedRowBreakTests
{
    [Fact]
    public async Task Connect_without_waiting_then_ReceiveReplyAsync_reads_the_greeting_and_EHLO_gets_its_own_reply()
    {
        var script = SmtpScript.Parse(Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250 PIPELINING", "C: NOOP", "S: 250 2.0.0 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();

        (await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe()).Should().BeNull();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(220);
        var ehlo = await session.EhloAsync("client.example.test").Safe();

        ehlo.Code.Should().Be(250);
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Connect_without_waiting_then_EHLO_never_takes_the_greeting_for_the_reply_to_EHLO()
    {
        var script = SmtpScript.Parse(Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250 PIPELINING");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe()).Should().BeNull();

        SmtpReply? ehlo = null;
        var failure = await Record.ExceptionAsync(async () => ehlo = await session.EhloAsync("client.example.test").Safe());

        // Either the greeting is read first and EHLO gets its 250, or the call refuses to run; never the 220 as EHLO's reply.
        (failure is InvalidOperationException || ehlo?.Code == 250).Should().BeTrue($"EHLO returned {ehlo?.ToString() ?? "nothing"} and threw {failure?.GetType().Name ?? "nothing"}");
    }

    [Fact]
    public async Task A_multiline_reply_with_enhanced_codes_keeps_every_line_and_the_first_lines_text()
    {
        var script = SmtpScript.Parse(Greeting, "C: VRFY someone", "S: 553-5.1.2 first line", "S: 553-5.1.2 second line", "S: 553 5.1.2 last line", "C: HELP", "S: 502 5.5.1 not implemented");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var reply = await session.VrfyAsync("someone").Safe();
        await session.SendCommandAsync("HELP").Safe();
        var help = await session.ReceiveReplyAsync().Safe();

        reply.Code.Should().Be(553);
        reply.IsPermanentNegative.Should().BeTrue();
        reply.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 2));
        reply.Text.Should().Be("first line");
        reply.Lines.Should().HaveCount(3);
        help.Code.Should().Be(502);
        session.LastReply.Should().BeSameAs(help);
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task After_a_cancelled_send_the_same_session_reconnects_and_starts_clean(bool chunking)
    {
        var reached = new TaskCompletionSource();
        var first = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 2.1.5 ok")
            .Signal(reached).ExpectClosed();
        await using var server1 = ScriptedSmtpServer.Start(first);
        using var session = await ConnectedAsync(server1);
        using var cts = new CancellationTokenSource();
        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await reached.Task.Safe();
        await cts.CancelAsync();
        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<SmtpOutcomeUnknownException>();
        session.IsConnected.Should().BeFalse();
        await FluentActions.Awaiting(() => session.SendAsync(Envelope("one@example.test"), Ascii(SmallText))).Should().ThrowAsync<InvalidOperationException>();
        await server1.WaitAsync();

        // The second server offers neither PIPELINING nor CHUNKING: nothing of the first connection may carry over.
        var script = chunking
            ? Script(Ehlo("CHUNKING"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<two@example.test>", "S: 250 ok")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.AfterReplies).Then("S: 250 2.0.0 queued")
            : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<two@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
                .Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server2 = ScriptedSmtpServer.Start(script.Then("C> QUIT", "S: 221 bye"));
        await session.ConnectAsync(server2.ClientStream).Safe();
        session.Capabilities.Count.Should().Be(0, "capabilities are the new server's, learned by EHLO");
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);

        var result = await session.SendAsync(Envelope("two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        (await session.QuitAsync().Safe()).Code.Should().Be(221);
        await server2.WaitAsync();
    }
    [Fact]
    public async Task A_send_before_the_greeting_was_read_never_takes_the_greeting_for_a_reply()
    {
        var script = SmtpScript.Parse(Greeting, "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 250 ok", "C: DATA", "S: 354 go")
            .Then(DataLines(SmallText, firstAfterReply: false)).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        (await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe()).Should().BeNull();

        SmtpSendResult? result = null;
        var failure = await Record.ExceptionAsync(async () => result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe());

        // Refusing to run, or reading the greeting first, are both sound; a 220 filed as MAIL's reply is not.
        (failure is InvalidOperationException || result?.MailReply?.Code == 250).Should().BeTrue($"SendAsync returned {result?.ToString() ?? "nothing"} (MAIL reply {result?.MailReply}) and threw {failure?.GetType().Name ?? "nothing"}: {failure?.Message}");
    }
}
