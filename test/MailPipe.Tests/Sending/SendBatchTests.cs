using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>SendBatchAsync: overlapping transactions, one result per message in order, round trips, lost connections.</summary>
public class SendBatchTests
{
    private static async IAsyncEnumerable<SmtpMessage> AsyncMessages(params SmtpMessage[] messages)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }
    }

    [Fact]
    public async Task With_PIPELINING_and_DATA_each_final_dot_goes_in_the_same_flush_as_the_next_transaction()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(2)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 2", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(3)))
            .Then("S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3)]).Safe();

        results.Should().HaveCount(3);
        results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
        results.Select(r => r.FinalReply!.Text).Should().Equal("queued 1", "queued 2", "queued 3");
        results.Select(r => r.Envelope.Recipients[0].Address).Should().Equal("m1@example.test", "m2@example.test", "m3@example.test");
        (session.RoundTrips - before).Should().Be(4, "one wait per message for 354, and one for the last final reply");
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_PIPELINING_and_CHUNKING_MaxTransactionsInFlight_transactions_go_out_before_the_first_final_reply()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2")
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>")
            .ExpectBytes(Bdat(Content(3), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { MaxTransactionsInFlight = 2 });
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync(AsyncMessages(Message(1), Message(2), Message(3))).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        results.Select(r => r.FinalReply!.Text).Should().Equal("queued 1", "queued 2", "queued 3");
        (session.RoundTrips - before).Should().Be(2, "one round trip per window of two transactions");
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_the_default_window_a_small_chunked_batch_costs_one_round_trip()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious);
        for (var i = 2; i <= 5; i++)
        {
            script.Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", $"C+ RCPT TO:<m{i}@example.test>")
                .ExpectBytes(Bdat(Content(i), last: true), ClientArrival.WithPrevious);
        }

        script.Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1");
        for (var i = 2; i <= 5; i++)
        {
            script.Then("S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", $"S: 250 2.0.0 queued {i}");
        }

        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync(Enumerable.Range(1, 5).Select(Message)).Safe();

        results.Select(r => r.FinalReply!.Text).Should().Equal(Enumerable.Range(1, 5).Select(i => $"queued {i}"));
        (session.RoundTrips - before).Should().Be(1);
        await server.WaitAsync();
    }

    [Fact]
    public async Task MaxTransactionsInFlight_1_waits_for_each_final_reply()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { MaxTransactionsInFlight = 1 });
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results.Should().OnlyContain(r => r.IsAccepted);
        (session.RoundTrips - before).Should().Be(2);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Each_message_of_a_batch_gets_its_own_result_in_order()
    {
        var script = Script(Ehlo("PIPELINING", "ENHANCEDSTATUSCODES"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 550 5.1.1 m2 unknown", "S: 554 5.5.1 no valid recipients")
            .Then("C> RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(3)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m4@example.test>", "C+ DATA")
            .Then("S: 452 4.3.1 out of space", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(4)))
            .Then("S: 250 2.0.0 queued 4");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync(AsyncMessages(Message(1), Message(2), Message(3), Message(4))).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted);
        results[1].Recipients[0].Reply!.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(5, 1, 1));
        results[1].DataReply!.Code.Should().Be(554);
        results[2].FinalReply!.Code.Should().Be(452);
        results[2].IsTransientFailure.Should().BeTrue();
        results[3].FinalReply!.Text.Should().Be("queued 4");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_message_that_cannot_be_sent_is_skipped_without_a_byte_and_the_batch_goes_on()
    {
        var tooLarge = SmtpMessage.FromBytes(Envelope("m2@example.test"), new byte[5000]);
        var script = Script(Ehlo("PIPELINING", "SIZE 1000"), $"C: MAIL FROM:<sender@example.test> SIZE={Content(1).Length}", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", $"C+ MAIL FROM:<sender@example.test> SIZE={Content(3).Length}", "C+ RCPT TO:<m3@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(3)))
            .Then("S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), tooLarge, Message(3)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.Accepted);
        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_PIPELINING_a_batch_goes_one_command_at_a_time_with_RSET_after_a_refusal()
    {
        var script = Script(Ehlo("8BITMIME"), "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m2@example.test>", "S: 550 5.1.1 unknown")
            .Then("C> RSET", "S: 250 reset", "C> MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m3@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(3)))
            .Then("S: 250 2.0.0 queued 3");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted);
        (session.RoundTrips - before).Should().Be(4 + 2 + 5);
        await server.WaitAsync();
    }

    [Fact]
    public async Task An_empty_batch_sends_nothing()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);
        var before = session.RoundTrips;

        var results = await session.SendBatchAsync(Array.Empty<SmtpMessage>()).Safe();

        results.Should().BeEmpty();
        (session.RoundTrips - before).Should().Be(0);
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    // ---- Lost connections ----

    [Fact]
    public async Task Messages_after_a_connection_lost_while_reading_replies_are_NotSent()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3), Message(4)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent);
        results.Skip(1).Should().OnlyContain(r => r.Exception != null && ((SmtpException)r.Exception).ErrorCode == SmtpErrorCode.ConnectionClosed);
        results.Skip(2).Should().OnlyContain(r => r.MailReply == null);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Messages_after_a_connection_lost_while_writing_are_NotSent_in_a_list_and_not_taken_from_an_async_sequence(bool list)
    {
        var large = SmtpMessage.FromBytes(Envelope("m2@example.test"), Encoding.ASCII.GetBytes(Lines(1000, 64)));
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA")
            .Then("S: 250 2.0.0 queued 1", "S: 250 2.0.0 reset", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Skip(1000)
            .Drop();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024 });

        var results = list
            ? await session.SendBatchAsync([Message(1), large, Message(3)]).Safe()
            : await session.SendBatchAsync(AsyncMessages(Message(1), large, Message(3))).Safe();

        // A list gets one result per message; the caller's own sequence is not taken from after the loss (the third
        // message has no result: it was never asked for, so an endless sequence cannot keep the call going).
        results.Select(r => r.Outcome).Should().Equal(list
            ? [SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent]
            : [SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent]);
        results.Skip(1).Should().OnlyContain(r => r.Exception != null && ((SmtpException)r.Exception).ErrorCode == SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_DATA_a_message_whose_dot_went_out_with_the_next_transaction_is_Unknown_when_the_connection_is_lost()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Unknown, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent);
        results.Should().OnlyContain(r => r.Exception != null && ((SmtpException)r.Exception).ErrorCode == SmtpErrorCode.ConnectionClosed);
        results[0].DataReply!.Code.Should().Be(354);
        results[0].FinalReply.Should().BeNull();
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_CHUNKING_every_transaction_of_the_window_whose_LAST_went_out_is_Unknown_when_the_connection_is_lost()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true), ClientArrival.WithPrevious)
            .Then("C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m3@example.test>")
            .ExpectBytes(Bdat(Content(3), last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { MaxTransactionsInFlight = 3 });

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3), Message(4)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Unknown, SmtpSendOutcome.Unknown, SmtpSendOutcome.NotSent);
        results[1].MailReply.Should().BeNull("the connection was lost before the reply to RSET");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Messages_after_a_lost_connection_without_PIPELINING_are_NotSent()
    {
        var script = Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go")
            .Then(DataLines(Content(1)))
            .Then("S: 250 2.0.0 queued 1", "C> MAIL FROM:<sender@example.test>", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2), Message(3)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent, SmtpSendOutcome.NotSent);
        results.Skip(1).Should().OnlyContain(r => r.Exception != null && ((SmtpException)r.Exception).ErrorCode == SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Messages_after_a_354_to_a_refused_MAIL_are_NotSent()
    {
        var script = Script(
            Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<m1@example.test>",
            "C+ DATA",
            "S: 550 5.7.1 sender refused",
            "S: 250 ok",
            "S: 354 go ahead",
            "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message(1), Message(2)]).Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Refused, SmtpSendOutcome.NotSent);
        results[1].Exception.Should().NotBeNull();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task CR_or_LF_in_a_later_message_of_an_async_sequence_throws_after_the_earlier_ones_are_finished(bool chunking)
    {
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "m2@example.test") { MailParameters = "X=1\r\nRSET" }, Encoding.ASCII.GetBytes(Content(2)));
        SmtpScript script;
        if (chunking)
        {
            script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>")
                .ExpectBytes(Bdat(Content(1), last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1");
        }
        else
        {
            script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m1@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
                .Then(DataLines(Content(1)))
                .Then("S: 250 2.0.0 queued 1");
        }

        await using var server = ScriptedSmtpServer.Start(script.Then("C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.SendBatchAsync(AsAsync(Message(1), bad, Message(3))).Safe()).Should().ThrowAsync<ArgumentException>();

        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "the first message was finished and nothing of the second went out");
        await server.WaitAsync();
    }

    [Fact]
    public async Task CR_or_LF_anywhere_in_a_list_throws_before_anything_is_sent()
    {
        var bad = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "m2@example.test") { MailParameters = "X=1\r\nRSET" }, Encoding.ASCII.GetBytes(Content(2)));
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING", "CHUNKING"), "C: NOOP", "S: 250 ok"));
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.SendBatchAsync([Message(1), bad, Message(3)]).Safe()).Should().ThrowAsync<ArgumentException>();

        (await session.NoopAsync().Safe()).Code.Should().Be(250, "not one byte of the batch went out");
        await server.WaitAsync();
    }

    private static async IAsyncEnumerable<SmtpMessage> AsAsync(params SmtpMessage[] messages)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }
    }
}
