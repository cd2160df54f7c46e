using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>Probes of SmtpBatchArgumentException (an async batch with a bad or null message) through the public API.</summary>
public class BatchArgumentBreakTests
{
    private static SmtpMessage Bad(int i) => SmtpMessage.FromBytes(new SmtpEnvelope(Sender, $"m{i}@example.test") { MailParameters = "X=1\r\nRSET" }, Ascii(Content(i)));

    private static string[] Tx(int i, string final = "250 2.0.0 queued", bool pipelining = true, bool rset = false) => pipelining && rset
        ? ["C: RSET", $"C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false), "S: " + final]
        : pipelining
        ? [$"C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false), "S: " + final]
        : [$"C: MAIL FROM:<sender@example.test>", "S: 250 ok", $"C: RCPT TO:<m{i}@example.test>", "S: 250 ok", "C: DATA", "S: 354 go", .. DataLines(Content(i), firstAfterReply: false), "S: " + final];

    [Fact]
    public async Task Bad_message_first_has_only_its_own_NotSent_result_and_the_session_sends_on_without_RSET()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(3));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Bad(1), Message(2))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        thrown.Which.Results.Should().ContainSingle().Which.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        thrown.Which.ParamName.Should().Be("MailParameters");
        (await session.SendAsync(Message(3)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_negative_size_in_an_async_batch_is_a_bad_message_too()
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(3));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var negative = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "m1@example.test") { Size = -1 }, Ascii(Content(1)));

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(negative, Message(2))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        thrown.Which.Results.Should().ContainSingle().Which.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        thrown.Which.ParamName.Should().Be("Size");
        (await session.SendAsync(Message(3)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Null_message_first_has_no_results()
    {
        var script = Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(null!, Message(2))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        thrown.Which.Results.Should().BeEmpty();
        thrown.Which.InnerException.Should().BeOfType<ArgumentNullException>();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Bad_message_after_a_refused_one_keeps_the_refusal_and_the_next_send_starts_with_RSET(bool pipelining)
    {
        var script = Script(Ehlo(pipelining ? ["PIPELINING"] : ["8BITMIME"])).Then(Tx(1, pipelining: pipelining)).Then(Tx(2, "550 5.7.1 refused", pipelining, rset: true)).Then("C: RSET", "S: 250 ok").Then(Tx(4, pipelining: pipelining));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), Message(2), Bad(3), Message(9))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        var results = thrown.Which.Results;
        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.NotSent);
        results[1].FinalReply!.Code.Should().Be(550);
        results[2].Exception.Should().BeSameAs(thrown.Which.InnerException);
        (await session.SendAsync(Message(4)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Bad_message_after_accepted_ones_the_next_send_has_no_RSET_without_pipelining()
    {
        var script = Script(Ehlo("8BITMIME")).Then(Tx(1, pipelining: false)).Then(Tx(4, pipelining: false));
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), Bad(2))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        thrown.Which.Results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.NotSent);
        (await session.SendAsync(Message(4)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Bad_message_in_a_BDAT_window_waits_for_the_window_replies(bool nullMessage)
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"));
        foreach (var i in new[] { 1, 2 })
        {
            script.Then(i == 2 ? ["C: RSET"] : []).Then("C: MAIL FROM:<sender@example.test>", $"C: RCPT TO:<m{i}@example.test>").ExpectRaw($"BDAT {Content(i).Length} LAST\r\n{Content(i)}");
        }

        script.Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 550 5.7.1 no 2");
        script.Then("C: RSET", "S: 250 ok", "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m4@example.test>").ExpectRaw($"BDAT {Content(4).Length} LAST\r\n{Content(4)}").Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 4");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), Message(2), nullMessage ? null! : Bad(3))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();
        var outcomes = thrown.Which.Results.Select(r => r.Outcome).ToList();
        outcomes.Should().StartWith([SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused]);
        outcomes.Should().HaveCount(nullMessage ? 2 : 3);
        (await session.SendAsync(Message(4)).Safe()).IsAccepted.Should().BeTrue();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Streaming_a_null_or_bad_message_yields_the_earlier_results_then_throws_an_ArgumentException(bool nullMessage)
    {
        var script = Script(Ehlo("PIPELINING")).Then(Tx(1)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var yielded = new List<SmtpSendResult>();
        Exception? caught = null;
        try
        {
            await foreach (var r in session.SendBatchStreamingAsync(Sequence(Message(1), nullMessage ? null! : Bad(2))))
            {
                yielded.Add(r);
            }
        }
        catch (Exception ex)
        {
            caught = ex;
        }

        caught.Should().BeAssignableTo<ArgumentException>();
        caught.Should().NotBeOfType<SmtpBatchArgumentException>();
        if (nullMessage)
        {
            caught.Should().BeOfType<ArgumentNullException>();
        }

        yielded[0].IsAccepted.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_connection_lost_before_the_final_reply_is_in_the_results_of_the_bad_message_error_as_in_a_batch_without_it(bool nullMessage)
    {
        // The server takes the first message's end of data and the connection breaks before its final reply.
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Then(DataLines(Content(1), firstAfterReply: false))
            .Then("DROP");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var thrown = await FluentActions.Awaiting(() => session.SendBatchAsync(Sequence(Message(1), nullMessage ? null! : Bad(2))).Safe()).Should().ThrowAsync<SmtpBatchArgumentException>();

        var first = thrown.Which.Results[0];
        first.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        first.Exception.Should().BeAssignableTo<SmtpException>("the result says why its final reply never came, as the same batch without the bad message does");
        await server.WaitAsync();
    }

    [Fact]
    public void Message_reads_well()
    {
        var inner = new ArgumentException("An SMTP command argument must not contain CR, LF or NUL (command injection).", "MailParameters");
        var ex = new SmtpBatchArgumentException([], inner);
        ex.ParamName.Should().Be("MailParameters");
        ex.Message.Should().EndWith(inner.Message, "the parameter's name ends the message, as in any ArgumentException");
        ex.Message.Split("(Parameter").Should().HaveCount(2, "the parameter is named once");
        ex.Message.Should().NotContain("were sent", "the first message of a sequence may be the bad one, and the ones before it may have been refused");
        FluentActions.Invoking(() => new SmtpBatchArgumentException(null!, inner)).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("results");
        FluentActions.Invoking(() => new SmtpBatchArgumentException([], null!)).Should().Throw<ArgumentNullException>().Which.ParamName.Should().Be("innerException");
    }

    private static async IAsyncEnumerable<SmtpMessage> Sequence(params SmtpMessage[] messages)
    {
        foreach (var message in messages)
        {
            await Task.Yield();
            yield return message;
        }
    }
}
