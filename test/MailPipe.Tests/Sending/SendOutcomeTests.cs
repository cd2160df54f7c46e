using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>What the result says for each reply the server can give: per-recipient replies, refusals, odd servers.</summary>
public class SendOutcomeTests
{
    [Fact]
    public async Task Every_recipient_reply_is_reported_in_envelope_order_with_its_enhanced_status_code()
    {
        var script = Script(
            Ehlo("PIPELINING", "ENHANCEDSTATUSCODES"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ RCPT TO:<three@example.test>",
            "C+ RCPT TO:<four@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 sender ok",
            "S: 250 2.1.5 one ok",
            "S: 550 5.1.1 two: no such user",
            "S: 452 4.2.2 three: mailbox full",
            "S: 251 2.1.5 four: will forward",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var envelope = Envelope("one@example.test", "two@example.test", "three@example.test", "four@example.test");

        var result = await session.SendAsync(envelope, Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Envelope.Should().BeSameAs(envelope);
        result.Recipients.Select(r => r.Recipient).Should().Equal(envelope.Recipients);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 550, 452, 251);
        result.Recipients.Select(r => r.Reply!.EnhancedStatusCode).Should().Equal(
            new EnhancedStatusCode(2, 1, 5), new EnhancedStatusCode(5, 1, 1), new EnhancedStatusCode(4, 2, 2), new EnhancedStatusCode(2, 1, 5));
        result.Recipients.Select(r => r.Accepted).Should().Equal(true, false, false, true);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal("one@example.test", "four@example.test");
        result.RefusedRecipients.Select(r => r.Recipient.Address).Should().Equal("two@example.test", "three@example.test");
        result.MailReply!.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 1, 0));
        result.FinalReply!.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(2, 0, 0));
        result.IsTransientFailure.Should().BeFalse();
        result.ToString().Should().StartWith("Accepted: 2 of 4 recipient(s) accepted");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Refused_sender_is_Refused_and_the_next_transaction_starts_with_RSET()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 550 5.7.1 sender refused",
            "S: 503 5.5.1 need MAIL",
            "S: 503 5.5.1 need MAIL",
            "C> RSET",
            "C+ MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 2.0.0 reset",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.MailReply!.Code.Should().Be(550);
        result.Recipients[0].Reply!.Code.Should().Be(503);
        result.FinalReply.Should().BeNull();
        result.Exception.Should().BeNull();
        result.IsTransientFailure.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        server.ReceivedText.Should().NotContain("Subject", "no content after a refused transaction");

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Sender_refused_transiently_is_a_transient_failure(bool pipelining)
    {
        string[] transcript = pipelining
            ? ["C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 451 4.7.1 greylisted", "S: 503 5.5.1 need MAIL", "S: 503 5.5.1 need MAIL"]
            : ["C: MAIL FROM:<sender@example.test>", "S: 451 4.7.1 greylisted"];
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo(pipelining ? ["PIPELINING"] : ["8BITMIME"]), transcript).Then("C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.MailReply!.Code.Should().Be(451);
        result.IsTransientFailure.Should().BeTrue("the server refused the sender with 4yz; the 503 to the pipelined DATA only follows from it");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Every_recipient_refused_with_DATA_pipelined_is_Refused_and_the_554_to_DATA_is_kept()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 550 5.1.1 one unknown",
            "S: 553 5.1.3 two bad",
            "S: 554 5.5.1 no valid recipients",
            "C: NOOP",
            "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.DataReply!.Code.Should().Be(554);
        result.FinalReply.Should().BeNull();
        result.AcceptedRecipients.Should().BeEmpty();
        result.IsTransientFailure.Should().BeFalse();
        result.Exception.Should().BeNull();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no content and no dot after the refused DATA");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Every_recipient_refused_without_pipelining_sends_no_DATA()
    {
        var script = Script(
            Ehlo("8BITMIME"),
            "C: MAIL FROM:<sender@example.test>",
            "S: 250 ok",
            "C> RCPT TO:<one@example.test>",
            "S: 550 5.1.1 unknown",
            "C> NOOP",
            "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.DataReply.Should().BeNull();
        result.IsTransientFailure.Should().BeFalse();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("DATA pipelined")]
    [InlineData("BDAT pipelined")]
    [InlineData("354 anyway")]
    [InlineData("one at a time")]
    public async Task Every_recipient_refused_transiently_is_a_transient_failure(string mode)
    {
        string[] recipients = ["C+ RCPT TO:<one@example.test>", "C+ RCPT TO:<two@example.test>"];
        string[] refusals = ["S: 250 ok", "S: 450 4.2.1 try later", "S: 452 4.2.2 full"];
        var script = mode switch
        {
            "DATA pipelined" => Script(Ehlo("PIPELINING"), ["C: MAIL FROM:<sender@example.test>", .. recipients, "C+ DATA", .. refusals, "S: 554 5.5.1 no valid recipients"]),
            "BDAT pipelined" => Script(Ehlo("PIPELINING", "CHUNKING"), ["C: MAIL FROM:<sender@example.test>", .. recipients])
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .Then([.. refusals, "S: 554 5.5.1 no valid recipients"]),
            "354 anyway" => Script(Ehlo("PIPELINING"), ["C: MAIL FROM:<sender@example.test>", .. recipients, "C+ DATA", .. refusals, "S: 354 go", "C> .", "C+ RSET", "S: 554 5.5.1 no valid recipients", "S: 250 reset"]),
            _ => Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<one@example.test>", "S: 450 4.2.1 try later", "C: RCPT TO:<two@example.test>", "S: 452 4.2.2 full"),
        };
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.IsTransientFailure.Should().BeTrue("every recipient was refused with 4yz; a 554 to the pipelined DATA, BDAT or lone dot only follows from it");
        await server.WaitAsync();
    }

    [Fact]
    public async Task One_recipient_refused_permanently_among_transient_ones_is_not_a_transient_failure()
    {
        await using var server = ScriptedSmtpServer.Start(Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 450 4.2.1 try later",
            "S: 550 5.1.1 unknown",
            "S: 554 5.5.1 no valid recipients"));
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.IsTransientFailure.Should().BeFalse("sending the same envelope again cannot succeed for the 550 recipient");
        await server.WaitAsync();
    }

    [Fact]
    public async Task DATA_refused_transiently_after_accepted_recipients_is_a_transient_failure()
    {
        await using var server = ScriptedSmtpServer.Start(Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 451 4.3.0 try again later",
            "C: NOOP",
            "S: 250 ok"));
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.DataReply!.Code.Should().Be(451);
        result.IsTransientFailure.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "no content after a refused DATA");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_354_although_no_recipient_was_accepted_gets_a_lone_dot_then_RSET()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 550 5.1.1 unknown",
            "S: 354 go ahead anyway",
            "C> .",
            "C+ RSET",
            "S: 554 5.5.1 no valid recipients",
            "S: 250 2.0.0 reset",
            "C> MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go ahead").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.DataReply!.Code.Should().Be(354);
        result.FinalReply!.Code.Should().Be(554);
        result.Exception.Should().BeNull();
        session.IsConnected.Should().BeTrue();
        server.ReceivedText.Should().NotContain("Subject", "the content never goes out when no recipient was accepted");

        // The RSET already cleared the transaction: the next one starts with MAIL.
        (await session.SendAsync(Envelope("two@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_354_although_no_recipient_was_accepted_is_Refused_even_if_the_dot_gets_250()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 550 5.1.1 unknown",
            "S: 354 go ahead anyway",
            "C> .",
            "C+ RSET",
            "S: 250 2.0.0 queued (nothing)",
            "S: 250 2.0.0 reset");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused, "no recipient was accepted, whatever the server says to the empty message");
        result.IsAccepted.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_354_although_MAIL_was_refused_closes_the_connection_without_writing_anything_more()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 550 5.7.1 sender refused",
            "S: 250 ok",
            "S: 354 go ahead",
            "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().NotBe(SmtpSendOutcome.Accepted);
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.MailReply!.Code.Should().Be(550);
        result.FinalReply.Should().BeNull();
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
        server.ReceivedText.Should().EndWith("DATA\r\n", "not even a dot may follow: it could end a transaction that is not this envelope's");
    }

    [Theory]
    [InlineData(false, 451, true)]
    [InlineData(false, 452, true)]
    [InlineData(false, 554, false)]
    [InlineData(false, 552, false)]
    [InlineData(true, 451, true)]
    [InlineData(true, 554, false)]
    public async Task A_negative_final_reply_is_Refused_and_transient_only_for_4yz(bool chunking, int code, bool transient)
    {
        var script = Script(Ehlo(chunking ? ["PIPELINING", "CHUNKING"] : ["PIPELINING"]), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>");
        if (chunking)
        {
            script.ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious).Then("S: 250 ok", "S: 250 ok");
        }
        else
        {
            script.Then("C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead").Then(DataLines(SmallText));
        }

        script.Send($"{code} {code / 100}.0.0 not this time");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.FinalReply!.Code.Should().Be(code);
        result.IsTransientFailure.Should().Be(transient);
        result.Exception.Should().BeNull();
        result.AcceptedRecipients.Should().HaveCount(1, "the recipient was accepted; the message was not");
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_refused_message_makes_the_next_transaction_start_with_RSET()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 554 5.7.1 spam", "C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        await server.WaitAsync();
    }
}
