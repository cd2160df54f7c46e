using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// What one send call leaves to the next on the same session: RSET after a refused transaction across SendAsync and
/// SendBatchAsync, the reply pump the session keeps (after a concurrent reader; after a cancellation: see
/// <c>SendFaultTests</c>), and the MAIL and RCPT parameters of consecutive messages.
/// </summary>
public class SendSessionStateTests
{
    [Fact]
    public async Task SendAsync_then_SendBatchAsync_then_SendAsync_with_PIPELINING_and_DATA_reset_only_after_a_refusal()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<a@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued a")

            // The batch starts clean (the last transaction was accepted); its last message is refused.
            .Then("C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(2)))
            .Then("S: 554 5.7.1 refused 2")

            // So the next SendAsync starts with RSET.
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var first = await session.SendAsync(Envelope("a@example.test"), Ascii(SmallText)).Safe();
        var batch = await session.SendBatchAsync([Message(1), Message(2)]).Safe();
        var last = await session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe();

        first.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        first.FinalReply!.Text.Should().Be("queued a");
        batch.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused);
        last.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        last.FinalReply!.Text.Should().Be("queued b");
        (session.RoundTrips - before).Should().Be(2 + 3 + 2, "two per SendAsync with DATA; one per 354 and one for the last final reply in the batch");
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();
    }

    [Fact]
    public async Task SendAsync_then_SendBatchAsync_then_SendAsync_with_PIPELINING_and_CHUNKING_reset_only_after_a_refusal()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<a@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued a")
            .Then("C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 554 5.7.1 refused 2")
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<b@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var first = await session.SendAsync(Envelope("a@example.test"), Ascii(SmallText)).Safe();
        var batch = await session.SendBatchAsync([Message(1), Message(2)]).Safe();
        var last = await session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe();

        first.FinalReply!.Text.Should().Be("queued a");
        batch.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused);
        last.FinalReply!.Text.Should().Be("queued b");
        (session.RoundTrips - before).Should().Be(3, "one round trip per call with PIPELINING and CHUNKING");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_a_refused_SendAsync_makes_the_batch_start_with_RSET_and_an_accepted_batch_does_not()
    {
        var script = Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<a@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 554 5.7.1 refused a")
            .Then("C> RSET", "S: 250 reset", "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1")
            .Then("C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<b@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("a@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        (await session.SendBatchAsync([Message(1)]).Safe()).Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        (await session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_not_sent_for_its_size_between_a_refused_and_the_next_one_leaves_the_RSET_due_and_SIZE_follows_each_message()
    {
        const string longer = "Subject: hi\r\n\r\nlonger body\r\n";
        var script = Script(Ehlo("PIPELINING", "SIZE 100"), "C: MAIL FROM:<sender@example.test> SIZE=21", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 554 5.7.1 refused")

            // The 101-byte message writes nothing; the next one still starts with RSET, with its own SIZE.
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test> SIZE=28", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(longer))
            .Then("S: 250 2.0.0 queued 28")
            .Then("C> MAIL FROM:<sender@example.test> SIZE=21", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued 21");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).Outcome.Should().Be(SmtpSendOutcome.Refused);
        var tooLarge = await session.SendAsync(Envelope("one@example.test"), new byte[101]).Safe();
        var accepted = await session.SendAsync(Envelope("one@example.test"), Ascii(longer)).Safe();
        var again = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        tooLarge.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        tooLarge.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        accepted.FinalReply!.Text.Should().Be("queued 28");
        again.FinalReply!.Text.Should().Be("queued 21");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Only_the_recipients_with_parameters_get_them()
    {
        var envelope = new SmtpEnvelope(Sender, [
            new SmtpRecipient("one@example.test"),
            new SmtpRecipient("two@example.test") { Notify = DsnNotify.Never },
            new SmtpRecipient("three@example.test"),
        ]);
        var script = Script(
            Ehlo("PIPELINING", "DSN"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test> NOTIFY=NEVER",
            "C+ RCPT TO:<three@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go").Then(DataLines(SmallText)).Then(
            "S: 250 2.0.0 queued",
            "C> MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ DATA",
            "S: 250 ok",
            "S: 250 ok",
            "S: 354 go").Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(envelope, Ascii(SmallText)).Safe()).Recipients.Should().HaveCount(3).And.OnlyContain(r => r.Accepted);
        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue("no parameter is left over from the last message");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_group_long_enough_for_the_concurrent_reader_leaves_the_session_ready_for_the_next_SendAsync(bool chunking)
    {
        // More replies than the pump reads itself (64): a reader runs concurrently with the writer for this message.
        var recipients = Enumerable.Range(1, 100).Select(i => $"r{i}@example.test").ToArray();
        var script = Script(Ehlo(chunking ? ["PIPELINING", "CHUNKING"] : ["PIPELINING"]), "C: MAIL FROM:<sender@example.test>");
        foreach (var recipient in recipients)
        {
            script.Expect($"RCPT TO:<{recipient}>", ClientArrival.WithPrevious);
        }

        Then(script, "S: 250 2.1.0 ok", [.. recipients.Select(_ => "S: 250 2.1.5 ok")], "queued 1");
        script.Then("C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>");
        Then(script, "S: 250 2.1.0 ok", ["S: 250 2.1.5 ok"], "queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var many = await session.SendAsync(new SmtpEnvelope(Sender, recipients), Ascii(SmallText)).Safe();
        var one = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        many.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        many.Recipients.Should().HaveCount(100).And.OnlyContain(r => r.Accepted);
        many.FinalReply!.Text.Should().Be("queued 1");
        one.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        one.FinalReply!.Text.Should().Be("queued 2");
        (session.RoundTrips - before).Should().Be(chunking ? 2 : 4);
        session.PendingReplyCount.Should().Be(0);
        await server.WaitAsync();

        // After MAIL and the RCPTs: DATA or BDAT LAST in the same flush, the replies, and the content or final reply.
        void Then(SmtpScript s, string mailReply, string[] rcptReplies, string queued)
        {
            if (chunking)
            {
                s.ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious).Then([mailReply, .. rcptReplies, $"S: 250 2.0.0 {queued}"]);
            }
            else
            {
                s.Then(["C+ DATA", mailReply, .. rcptReplies, "S: 354 go", .. DataLines(SmallText), $"S: 250 2.0.0 {queued}"]);
            }
        }
    }
}
