using System.Text;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>Review of the single-message send path (f5d8885..490bc8b): what one call leaves to the next, and faults.</summary>
public class SendReviewTests
{
    [Fact]
    public async Task MAIL_parameters_follow_each_message_and_are_never_left_over_from_the_last_one()
    {
        var utf8 = new SmtpEnvelope(Sender, "one@example.test") { SmtpUtf8 = true };
        var eight = new SmtpEnvelope(Sender, "one@example.test") { Body = SmtpBodyType.EightBitMime };
        var dsn = new SmtpEnvelope(Sender, "one@example.test") { Return = DsnReturn.Headers, EnvelopeId = "id1" };
        var script = Script(Ehlo("PIPELINING", "SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN"));
        foreach (var mail in new[]
                 {
                     "MAIL FROM:<sender@example.test> SIZE=21",
                     "MAIL FROM:<sender@example.test> SIZE=21 SMTPUTF8",
                     "MAIL FROM:<sender@example.test> SIZE=21 BODY=8BITMIME",
                     "MAIL FROM:<sender@example.test> SIZE=21 RET=HDRS ENVID=id1",
                     "MAIL FROM:<sender@example.test> SIZE=21",
                     "MAIL FROM:<sender@example.test> SIZE=24",
                 })
        {
            script.Then("C> " + mail, "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
                .Then(DataLines(mail.EndsWith("24", StringComparison.Ordinal) ? SmallText + "x" : SmallText))
                .Then("S: 250 2.0.0 queued");
        }

        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        foreach (var envelope in new[] { Envelope("one@example.test"), utf8, eight, dsn, Envelope("one@example.test") })
        {
            (await session.SendAsync(envelope, Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        }

        // 22 bytes as given, 24 on the wire: the last line gets its CRLF (RFC 1870 §3 counts it).
        (await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText + "x")).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_result_keeps_its_recipients_after_later_calls_on_the_session()
    {
        var script = Script(Ehlo("PIPELINING"));
        foreach (var (rcpt, code) in new[] { ("a@example.test", "250 ok a"), ("b@example.test", "550 no b") })
        {
            script.Then("C> MAIL FROM:<sender@example.test>", $"C+ RCPT TO:<{rcpt}>", "C+ RCPT TO:<c@example.test>", "C+ DATA", "S: 250 ok", "S: " + code, "S: 250 ok c", "S: 354 go")
                .Then(DataLines(SmallText))
                .Then("S: 250 2.0.0 queued");
        }

        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var first = await session.SendAsync(Envelope("a@example.test", "c@example.test"), Ascii(SmallText)).Safe();
        var snapshot = first.Recipients.Select(r => (r.Recipient.Address, r.Reply!.Code)).ToList();
        var second = await session.SendAsync(Envelope("b@example.test", "c@example.test"), Ascii(SmallText)).Safe();

        first.Recipients.Select(r => (r.Recipient.Address, r.Reply!.Code)).Should().Equal(snapshot);
        second.Recipients.Select(r => (r.Recipient.Address, r.Reply!.Code)).Should().Equal(("b@example.test", 550), ("c@example.test", 250));
        ReferenceEquals(first.Recipients, second.Recipients).Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_second_SendAsync_while_one_runs_throws_InvalidOperationException_and_leaves_the_first_intact(bool pipelining)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var script = Script(Ehlo(pipelining ? ["PIPELINING"] : ["8BITMIME"]), "C: MAIL FROM:<sender@example.test>").Signal(reached).WaitFor(gate.Task);
        if (pipelining)
        {
            script.Then("C+ RCPT TO:<a@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        }
        else
        {
            script.Then("S: 250 ok", "C> RCPT TO:<a@example.test>", "S: 250 ok", "C> DATA", "S: 354 go");
        }

        script.Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued a");
        script.Then("C> MAIL FROM:<sender@example.test>");
        if (pipelining)
        {
            script.Then("C+ RCPT TO:<c@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go");
        }
        else
        {
            script.Then("S: 250 ok", "C> RCPT TO:<c@example.test>", "S: 250 ok", "C> DATA", "S: 354 go");
        }

        script.Then(DataLines(SmallText)).Then("S: 250 2.0.0 queued c");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var first = session.SendAsync(Envelope("a@example.test"), Ascii(SmallText));
        await reached.Task.Safe();
        await FluentActions.Awaiting(() => session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe()).Should().ThrowAsync<InvalidOperationException>();
        await FluentActions.Awaiting(() => session.SendBatchAsync([Message(1)]).Safe()).Should().ThrowAsync<InvalidOperationException>();
        gate.SetResult();

        (await first.Safe()).FinalReply!.Text.Should().Be("queued a");
        (await session.SendAsync(Envelope("c@example.test"), Ascii(SmallText)).Safe()).FinalReply!.Text.Should().Be("queued c");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_failing_content_stream_with_PIPELINING_CHUNKING_and_a_window_of_one_is_NotSent_instead_of_hanging()
    {
        // Same exchange as SendFaultTests.A_content_stream_that_fails_..(chunking: true), with MaxTransactionsInFlight = 1:
        // the window is full after the message, and the writer waits for its BDAT LAST reply, which never comes (no BDAT LAST was written).
        var firstPart = Lines(40, 50);
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok");
        var offset = 0;
        while (firstPart.Length - offset >= 1024)
        {
            script.ExpectRaw("BDAT 1024\r\n" + firstPart[offset..(offset + 1024)]);
            offset += 1024;
        }

        script.Then("C: RSET");
        for (var i = 0; i < offset / 1024; i++)
        {
            script.Then("S: 250 chunk ok");
        }

        script.Then("S: 250 reset");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024, MaxTransactionsInFlight = 1 });

        var result = await session.SendAsync(Envelope("one@example.test"), new FailingStream(Encoding.ASCII.GetBytes(firstPart))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        await server.WaitAsync();
    }

    [Fact]
    public async Task An_async_sequence_that_throws_InvalidOperationException_after_a_message_ends_that_message_and_does_not_wait_for_a_reply_never_flushed_its_result_is_kept()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Throwing(Message(1))).Safe()).Should().ThrowAsync<SmtpBatchSequenceException>();
        thrown.Which.InnerException.Should().BeOfType<InvalidOperationException>();
        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();

        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_transaction_left_open_with_the_command_API_after_SendAsync_is_reset_by_the_next_SendAsync()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<a@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued a")
            .Then("C: MAIL FROM:<sender@example.test>", "S: 250 ok")

            // The server holds a transaction: MAIL now would be 503 (RFC 5321 §4.1.1.2).
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        (await session.SendAsync(Envelope("a@example.test"), Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();
        (await session.MailFromAsync(Sender).Safe()).Code.Should().Be(250);
        (await session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe()).FinalReply!.Text.Should().Be("queued b");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_content_stream_that_throws_ObjectDisposedException_between_chunks_is_NotSent_and_leaves_no_transaction_open(bool pipelining)
    {
        var firstPart = Lines(40, 50);
        var script = Script(Ehlo(pipelining ? ["PIPELINING", "CHUNKING"] : ["CHUNKING"]), "C: MAIL FROM:<sender@example.test>");
        script.Then(pipelining ? "C+ RCPT TO:<one@example.test>" : "S: 250 ok");
        if (pipelining)
        {
            // The first of several chunks waits for the envelope's replies.
            script.Then("S: 250 ok", "S: 250 ok");
        }
        else
        {
            script.Then("C> RCPT TO:<one@example.test>", "S: 250 ok");
        }

        var offset = 0;
        var chunks = 0;
        while (firstPart.Length - offset >= 1024)
        {
            script.ExpectRaw("BDAT 1024\r\n" + firstPart[offset..(offset + 1024)]);
            if (!pipelining)
            {
                script.Then("S: 250 chunk ok");
            }

            offset += 1024;
            chunks++;
        }

        // As for an IOException: the transaction is reset, the message NotSent, the session usable.
        script.Then("C: RSET");
        if (pipelining)
        {
            for (var i = 0; i < chunks; i++)
            {
                script.Then("S: 250 chunk ok");
            }
        }

        script.Then("S: 250 reset", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024 });

        var result = await session.SendAsync(Envelope("one@example.test"), new FailingStream(Encoding.ASCII.GetBytes(firstPart), new ObjectDisposedException("content"))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_transcript_of_two_chunked_SendAsync_calls_masks_addresses_and_shows_each_BDAT_header_and_no_content()
    {
        var envelope = new SmtpEnvelope(Sender, [new SmtpRecipient("rcpt@example.test") { Notify = DsnNotify.Never }]);
        var script = Script(Ehlo("PIPELINING", "CHUNKING", "DSN"));
        foreach (var text in new[] { SmallText, "Subject: hi\r\n\r\nlonger body\r\n" })
        {
            script.Then("C> MAIL FROM:<sender@example.test>", "C+ RCPT TO:<rcpt@example.test> NOTIFY=NEVER")
                .ExpectBytes(Bdat(text, last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued");
        }

        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { LoggerFactory = logs });

        await session.SendAsync(envelope, Ascii(SmallText)).Safe();
        await session.SendAsync(envelope, Ascii("Subject: hi\r\n\r\nlonger body\r\n")).Safe();

        var transcript = logs.Entries.Where(e => e.Category == "MailPipe.Protocol" && e.Message.StartsWith("C: ", StringComparison.Ordinal)).Select(e => e.Message).Skip(1).ToList();
        transcript.Should().Equal(
            "C: MAIL FROM:<***@example.test>",
            "C: RCPT TO:<***@example.test> NOTIFY=NEVER",
            "C: BDAT 21 LAST",
            "C: <message data, 21 bytes>",
            "C: MAIL FROM:<***@example.test>",
            "C: RCPT TO:<***@example.test> NOTIFY=NEVER",
            "C: BDAT 28 LAST",
            "C: <message data, 28 bytes>");
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_transcript_does_not_show_the_ORCPT_address_unless_LogAddresses()
    {
        var envelope = new SmtpEnvelope(Sender, [new SmtpRecipient("rcpt@example.test") { OriginalRecipient = "private.person@example.test" }]);
        var script = Script(Ehlo("PIPELINING", "DSN"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<rcpt@example.test> ORCPT=rfc822;private.person@example.test", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued");
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { LoggerFactory = logs });

        (await session.SendAsync(envelope, Ascii(SmallText)).Safe()).IsAccepted.Should().BeTrue();

        logs.Entries.Where(e => e.Category == "MailPipe.Protocol").Select(e => e.Message).Should().NotContain(m => m.Contains("private.person", StringComparison.Ordinal), "LogAddresses is false: addresses are personal data");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_bad_message_after_a_refused_one_in_an_async_batch_still_makes_the_next_call_start_with_RSET()
    {
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "m2@example.test") { MailParameters = "X=1\r\nRSET" }, Ascii(SmallText));
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 554 5.7.1 refused")

            // The refused transaction may still be open at the server (Postfix keeps it): the next call resets first.
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(SmallText))
            .Then("S: 250 2.0.0 queued b");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), bad)).Safe()).Should().ThrowAsync<ArgumentException>();
        (await session.SendAsync(Envelope("b@example.test"), Ascii(SmallText)).Safe()).FinalReply!.Text.Should().Be("queued b");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_bad_message_in_an_async_batch_comes_with_the_results_of_the_messages_sent_before_it()
    {
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "m2@example.test") { MailParameters = "X=1\r\nRSET" }, Ascii(SmallText));
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), bad)).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();

        var error = thrown.Which;
        error.Should().BeAssignableTo<ArgumentException>("code that catches bad input keeps working");
        error.InnerException.Should().BeOfType<ArgumentException>();
        error.Results.Should().HaveCount(2);
        error.Results[0].IsAccepted.Should().BeTrue("the first message was sent and accepted before the bad one was taken");
        error.Results[0].FinalReply!.Text.Should().Be("queued 1");
        error.Results[1].Outcome.Should().Be(SmtpSendOutcome.NotSent);
        error.Results[1].Exception.Should().BeSameAs(error.InnerException);
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_null_message_in_an_async_batch_is_an_argument_error_with_the_results_before_it()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), null!)).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();

        thrown.Which.InnerException.Should().BeOfType<ArgumentNullException>();
        thrown.Which.ParamName.Should().Be("messages");
        thrown.Which.Results.Should().ContainSingle().Which.IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    private static async IAsyncEnumerable<SmtpMessage> Sequence(params SmtpMessage[] messages)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }
    }

    private static async IAsyncEnumerable<SmtpMessage> Throwing(SmtpMessage first)
    {
        await Task.Yield();
        yield return first;
        throw new InvalidOperationException("the producer's own failure");
    }
}
