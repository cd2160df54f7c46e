using System.Buffers;
using System.IO.Pipelines;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Pipelining on the wire (RFC 2920): what goes out in one flush before the server says anything, what waits for a
/// reply, the switches that turn it off, the HELO fallback, and the round trips the session counts.
/// </summary>
public class PipeliningTests
{
    [Fact]
    public async Task With_PIPELINING_MAIL_every_RCPT_and_DATA_arrive_in_one_flush_before_the_first_reply()
    {
        var script = Script(
            Ehlo("PIPELINING", "8BITMIME"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 sender ok",
            "S: 250 2.1.5 one ok",
            "S: 250 2.1.5 two ok",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued as 1");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.IsAccepted.Should().BeTrue();
        result.MailReply!.Code.Should().Be(250);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 250);
        result.DataReply!.Code.Should().Be(354);
        result.FinalReply!.Text.Should().Be("queued as 1");
        result.Exception.Should().BeNull();
        (session.RoundTrips - before).Should().Be(2, "one wait for 354, one for the final reply");
        session.IsConnected.Should().BeTrue();
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_PIPELINING_and_CHUNKING_MAIL_every_RCPT_and_BDAT_LAST_arrive_in_one_flush()
    {
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<one@example.test>",
                "C+ RCPT TO:<two@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.1.0 sender ok", "S: 250 2.1.5 one ok", "S: 250 2.1.5 two ok", "S: 250 2.0.0 queued as 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.DataReply.Should().BeNull("no DATA with BDAT, and no chunk was refused");
        result.FinalReply!.Text.Should().Be("queued as 2");
        (session.RoundTrips - before).Should().Be(1, "one round trip per transaction with PIPELINING and CHUNKING");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_each_command_waits_for_its_reply()
    {
        var script = Script(
            Ehlo("8BITMIME", "SIZE"),
            "C> MAIL FROM:<sender@example.test> SIZE=21",
            "S: 250 2.1.0 ok",
            "C> RCPT TO:<one@example.test>",
            "S: 250 2.1.5 ok",
            "C> RCPT TO:<two@example.test>",
            "S: 250 2.1.5 ok",
            "C> DATA",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(5, "MAIL, two RCPTs, DATA and the end of data each wait");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_but_with_CHUNKING_each_command_and_the_chunk_wait_for_their_reply()
    {
        var script = Script(
                Ehlo("CHUNKING"),
                "C> MAIL FROM:<sender@example.test>",
                "S: 250 2.1.0 ok",
                "C> RCPT TO:<one@example.test>",
                "S: 250 2.1.5 ok")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.AfterReplies)
            .Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(3);
        await server.WaitAsync();
    }

    [Fact]
    public async Task UsePipelining_false_sends_one_command_at_a_time_although_the_server_offers_PIPELINING()
    {
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C> MAIL FROM:<sender@example.test>",
                "S: 250 2.1.0 ok",
                "C> RCPT TO:<one@example.test>",
                "S: 250 2.1.5 ok")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.AfterReplies)
            .Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UsePipelining = false });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(3);
        await server.WaitAsync();
    }

    [Fact]
    public async Task UseChunking_false_sends_DATA_although_the_server_offers_CHUNKING()
    {
        var script = Script(
            Ehlo("PIPELINING", "CHUNKING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 ok",
            "S: 250 2.1.5 ok",
            "S: 354 go ahead").Then(DataLines(".dot first\r\n" + SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UseChunking = false });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(".dot first\r\n" + SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(2);
        server.ReceivedText.Should().Contain("\r\n..dot first\r\n", "DATA content is dot-stuffed");
        await server.WaitAsync();
    }

    [Fact]
    public async Task UsePipelining_false_and_UseChunking_false_cost_a_round_trip_per_command()
    {
        var script = Script(
            Ehlo("PIPELINING", "CHUNKING"),
            "C> MAIL FROM:<sender@example.test>",
            "S: 250 2.1.0 ok",
            "C> RCPT TO:<one@example.test>",
            "S: 250 2.1.5 ok",
            "C> DATA",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UsePipelining = false, UseChunking = false });
        var before = session.RoundTrips;

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(4);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_second_transaction_after_an_accepted_one_starts_with_MAIL()
    {
        var script = Script(
                Ehlo("PIPELINING", "CHUNKING"),
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<one@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued as 1", "C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<two@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued as 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        (await session.SendAsync(Envelope("two@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();

        await server.WaitAsync();
    }

    [Theory]
    [InlineData("bytes")]
    [InlineData("sequence")]
    [InlineData("stream")]
    [InlineData("pipe")]
    public async Task DATA_content_from_every_source_is_normalised_and_dot_stuffed(string source)
    {
        const string content = ".a\r\n..b\r\nc\n.\nd\r.e";
        const string wire = "..a\r\n...b\r\nc\r\n..\r\nd\r\n..e\r\n.\r\n";
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .ExpectRaw(wire, ClientArrival.AfterReplies)
            .Then("S: 250 queued", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var envelope = Envelope("one@example.test");
        var bytes = Ascii(content);

        var send = source switch
        {
            "bytes" => session.SendAsync(envelope, bytes),
            "sequence" => session.SendAsync(envelope, ReadOnlySequenceFactory.OneBytePerSegment(bytes)),
            "stream" => session.SendAsync(envelope, new MemoryStream(bytes)),
            _ => session.SendAsync(envelope, PipeReader.Create(new ReadOnlySequence<byte>(bytes))),
        };

        (await send.Safe()).IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendAsync_needs_a_connected_idle_session()
    {
        using var disconnected = new AsyncSmtpSession();
        await FluentActions.Awaiting(() => disconnected.SendAsync(Envelope("one@example.test"), Ascii(SmallText)))
            .Should().ThrowAsync<InvalidOperationException>();
        await FluentActions.Awaiting(() => disconnected.SendAsync((SmtpMessage)null!)).Should().ThrowAsync<ArgumentNullException>();
        await FluentActions.Awaiting(() => disconnected.SendBatchAsync((IEnumerable<SmtpMessage>)null!)).Should().ThrowAsync<ArgumentNullException>();

        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: DATA", "S: 354 go", "EXPECT CLOSE"));
        using var session = await ConnectedAsync(server);
        (await session.DataAsync().Safe()).Code.Should().Be(354);
        var written = server.ClientStream.BytesWritten;

        await FluentActions.Awaiting(() => session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)))
            .Should().ThrowAsync<InvalidOperationException>("the session is sending message data");

        server.ClientStream.BytesWritten.Should().Be(written);
        session.State.Should().Be(SmtpSessionState.SendingData);
        await session.DisconnectAsync();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_new_connection_starts_clean_even_after_a_refused_transaction()
    {
        await using (var first = ScriptedSmtpServer.Start(Script(
            Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 550 no", "S: 554 no valid recipients")))
        using (var session = new AsyncSmtpSession())
        {
            await session.ConnectAsync(first.ClientStream).Safe();
            await session.EhloAsync("client.example.test").Safe();
            (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
            await session.DisconnectAsync();
            await first.WaitAsync();

            var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 ok", "S: 250 queued");
            await using var second = ScriptedSmtpServer.Start(script);
            await session.ConnectAsync(second.ClientStream).Safe();
            await session.EhloAsync("client.example.test").Safe();

            (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue("no RSET from the old connection's transaction");
            await second.WaitAsync();
        }
    }

    [Theory]
    [InlineData(500)]
    [InlineData(502)]
    public async Task HelloAsync_falls_back_to_HELO_when_EHLO_is_unknown_and_SendAsync_then_sends_one_command_at_a_time(int ehloCode)
    {
        var script = SmtpScript.Parse(
            Greeting,
            "C: EHLO client.example.test",
            $"S: {ehloCode} 5.5.1 command not recognised",
            "C> HELO client.example.test",
            "S: 250 mail.example.test",
            "C> MAIL FROM:<sender@example.test>",
            "S: 250 ok",
            "C> RCPT TO:<one@example.test>",
            "S: 250 ok",
            "C> DATA",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var hello = await session.HelloAsync("client.example.test").Safe();

        hello.Code.Should().Be(250);
        hello.Text.Should().Be("mail.example.test");
        session.Capabilities.Count.Should().Be(0);
        session.Capabilities.SupportsPipelining.Should().BeFalse();

        var before = session.RoundTrips;
        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(4);
        await server.WaitAsync();
    }

    [Fact]
    public async Task HelloAsync_returns_the_EHLO_reply_when_EHLO_succeeds()
    {
        var script = SmtpScript.Parse([.. Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var hello = await session.HelloAsync("client.example.test").Safe();

        hello.Lines.Should().Equal("mail.example.test", "PIPELINING");
        session.Capabilities.SupportsPipelining.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no HELO went out after a successful EHLO");
        await server.WaitAsync();
    }

    [Fact]
    public async Task HelloAsync_does_not_fall_back_on_other_refusals()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: EHLO client.example.test", "S: 554 5.7.1 go away", "C: NOOP", "S: 250 ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        var hello = await session.HelloAsync("client.example.test").Safe();

        hello.Code.Should().Be(554);
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no HELO went out after a refusal other than 500/502");
        await server.WaitAsync();
    }
}
