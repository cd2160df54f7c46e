using System.IO.Pipelines;
using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Issue #4, acceptance 4: lost connections, 421, timeouts and cancellation. The outcome never lies: Unknown once the
/// end of data may have reached the server, NotSent before, and no truncated message is ever ended.
/// </summary>
public class SendFaultTests
{
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan SendTimeout = TimeSpan.FromSeconds(17);
    private static readonly TimeSpan DataTerminationTimeout = TimeSpan.FromSeconds(43);

    /// <summary>64,000 bytes of CRLF lines: far more than the client may write ahead of a server that stops reading.</summary>
    private static readonly string LargeText = Lines(1000, 64);

    private static SmtpSessionOptions FakeClockOptions(ObservableTimeProvider clock, bool pipelining = true, bool chunking = true) => new()
    {
        TimeProvider = clock,
        ReceiveTimeout = ReceiveTimeout,
        SendTimeout = SendTimeout,
        DataTerminationTimeout = DataTerminationTimeout,
        UsePipelining = pipelining,
        UseChunking = chunking,
    };

    /// <summary>MAIL, RCPT and the end of the data as the server reads them, replying to MAIL and RCPT, for one of four ways to send.</summary>
    private static SmtpScript UpToTheEndOfData(string mode)
    {
        switch (mode)
        {
            case "DATA pipelined":
                return Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
                    .Then(DataLines(SmallText));
            case "DATA":
                return Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok", "C> DATA", "S: 354 go ahead")
                    .Then(DataLines(SmallText));
            case "BDAT pipelined":
                return Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
                    .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                    .Then("S: 250 ok", "S: 250 ok");
            default:
                return Script(Ehlo("CHUNKING"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok")
                    .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.AfterReplies);
        }
    }

    private static void ShouldNotHaveEndedTheData(ScriptedSmtpServer server)
    {
        var text = server.ReceivedText;
        var data = text.IndexOf("DATA\r\n", StringComparison.Ordinal);
        if (data >= 0)
        {
            var afterData = text[(data + "DATA\r\n".Length)..];
            afterData.Should().NotContain("\r\n.\r\n", "a failed or cancelled message must never be ended");
            afterData.Should().NotStartWith(".\r\n");
        }

        text.Should().NotContain(" LAST\r\n", "a failed or cancelled message must never be ended");
    }

    [Theory]
    [InlineData("DATA pipelined")]
    [InlineData("DATA")]
    [InlineData("BDAT pipelined")]
    [InlineData("BDAT")]
    public async Task Connection_lost_after_the_end_of_data_was_written_is_Unknown(string mode)
    {
        await using var server = ScriptedSmtpServer.Start(UpToTheEndOfData(mode).Close());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { UsePipelining = mode.EndsWith("pipelined") });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, "the server has the whole message and may deliver it");
        result.Exception.Should().NotBeNull();
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        result.FinalReply.Should().BeNull();
        result.IsTransientFailure.Should().BeFalse("retrying an Unknown message risks a duplicate");
        result.IsAccepted.Should().BeFalse();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Connection_lost_after_the_reply_to_MAIL_is_NotSent_with_the_transport_exception(bool pipelining)
    {
        var script = pipelining
            ? Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 2.1.0 ok", "CLOSE")
            : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 2.1.0 ok", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.MailReply!.Code.Should().Be(250);
        result.Recipients[0].Reply.Should().BeNull();
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        result.IsTransientFailure.Should().BeTrue("nothing can have been delivered: safe to retry");
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task Connection_lost_in_the_middle_of_the_data_is_NotSent_and_the_data_is_never_ended(bool pipelining, bool chunking)
    {
        SmtpScript script;
        if (chunking)
        {
            // The first of several chunks waits for the envelope's replies, pipelined or not.
            script = pipelining
                ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
                : Script(Ehlo("CHUNKING"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok");
            script.ExpectRaw("BDAT 1024\r\n");
        }
        else
        {
            script = pipelining
                ? Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
                : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok", "C> DATA", "S: 354 go ahead");
        }

        script.Skip(1000).Drop();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        var options = new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024 };
        using var session = await ConnectedAsync(server, options);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(LargeText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().NotBeNull();
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        result.IsTransientFailure.Should().BeTrue();
        result.FinalReply.Should().BeNull();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task A_write_that_fails_in_the_middle_of_the_data_attaches_the_IOException()
    {
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
            .Skip(1000).Drop();
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 4096);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024 });

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(LargeText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.DataReply!.Code.Should().Be(354);
        result.Exception!.InnerException.Should().BeOfType<IOException>();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_421_in_the_middle_of_a_pipelined_group_keeps_the_replies_so_far_and_disconnects()
    {
        var script = Script(
            Ehlo("PIPELINING", "ENHANCEDSTATUSCODES"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<one@example.test>",
            "C+ RCPT TO:<two@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 sender ok",
            "S: 421 4.3.2 shutting down",
            "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.MailReply!.Code.Should().Be(250);
        result.Recipients[0].Reply!.Code.Should().Be(421);
        result.Recipients[0].Reply!.EnhancedStatusCode.Should().Be(new EnhancedStatusCode(4, 3, 2));
        result.Recipients[1].Reply.Should().BeNull();
        result.DataReply.Should().BeNull();
        result.FinalReply.Should().BeNull();
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        result.IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_421_after_BDAT_LAST_was_written_is_NotSent_because_the_server_closed_the_channel()
    {
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ RCPT TO:<two@example.test>")
            .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
            .Then("S: 250 ok", "S: 421 4.3.2 shutting down", "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, "the whole message went out, but a 421 means the server closes without processing the rest");
        result.Recipients[0].Reply!.Code.Should().Be(421);
        result.Recipients[1].Reply.Should().BeNull();
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        ((SmtpException)result.Exception!).Reply!.Code.Should().Be(421, "the 421 is carried on the exception");
        result.IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_421_to_the_only_recipient_is_a_transient_failure_and_disconnects(bool chunking)
    {
        var script = Script(Ehlo(chunking ? ["PIPELINING", "CHUNKING"] : ["PIPELINING"]), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>");
        if (chunking)
        {
            script.ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious);
        }
        else
        {
            script.Expect("DATA", ClientArrival.WithPrevious);
        }

        await using var server = ScriptedSmtpServer.Start(script.Then("S: 250 ok", "S: 421 4.3.2 shutting down", "EXPECT CLOSE"));
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test"), Ascii(SmallText)).Safe();

        // Every recipient has a reply and none was accepted: the transaction was refused (transiently) before the channel closed.
        result.Outcome.Should().BeOneOf(SmtpSendOutcome.Refused, SmtpSendOutcome.NotSent);
        result.Recipients[0].Reply!.Code.Should().Be(421);
        result.IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_421_to_RCPT_without_pipelining_disconnects_and_is_NotSent_with_an_exception()
    {
        var script = Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 421 4.3.2 shutting down", "EXPECT CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Envelope("one@example.test", "two@example.test"), Ascii(SmallText)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.MailReply!.Code.Should().Be(250);
        result.Recipients[0].Reply!.Code.Should().Be(421);
        result.Recipients[1].Reply.Should().BeNull();
        result.Exception.Should().NotBeNull("NotSent always says why");
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        result.IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Theory]
    [InlineData(true, "MAIL", SmtpSendOutcome.Refused)]
    [InlineData(false, "MAIL", SmtpSendOutcome.Refused)]
    [InlineData(true, "DATA", SmtpSendOutcome.NotSent)]
    [InlineData(false, "DATA", SmtpSendOutcome.NotSent)]
    [InlineData(true, "end of data", SmtpSendOutcome.Refused)]
    [InlineData(false, "end of data", SmtpSendOutcome.Refused)]
    public async Task A_421_closes_the_connection_the_same_way_with_or_without_pipelining(bool pipelining, string at, SmtpSendOutcome outcome)
    {
        const string Closing = "S: 421 4.3.2 shutting down";
        var script = Script(Ehlo(pipelining ? ["PIPELINING"] : ["8BITMIME"]), "C: MAIL FROM:<sender@example.test>");
        if (pipelining)
        {
            script.Then("C+ RCPT TO:<m1@example.test>", "C+ DATA");
            script.Then(at switch
            {
                "MAIL" => [Closing],
                "DATA" => ["S: 250 ok", "S: 250 ok", Closing],
                // The second transaction goes out with the first one's final dot.
                _ => ["S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(Content1), "C+ RSET", "C+ MAIL FROM:<sender@example.test>", "C+ RCPT TO:<m2@example.test>", "C+ DATA", Closing],
            });
        }
        else
        {
            script.Then(at switch
            {
                "MAIL" => [Closing],
                "DATA" => ["S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", Closing],
                _ => ["S: 250 ok", "C> RCPT TO:<m1@example.test>", "S: 250 ok", "C> DATA", "S: 354 go", .. DataLines(Content1), Closing],
            });
        }

        await using var server = ScriptedSmtpServer.Start(script.ExpectClosed());
        using var session = await ConnectedAsync(server);
        var second = SmtpMessage.FromBytes(Envelope("m2@example.test"), Ascii(SmallText));

        var results = await session.SendBatchAsync([SmtpMessage.FromBytes(Envelope("m1@example.test"), Ascii(Content1)), second]).Safe();

        results.Select(r => r.Outcome).Should().Equal(outcome, SmtpSendOutcome.NotSent);
        results[0].IsTransientFailure.Should().BeTrue("421 is transient");
        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        results[1].IsTransientFailure.Should().BeTrue();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    private const string Content1 = "Subject: one\r\n\r\none\r\n";

    [Theory]
    [InlineData("DATA pipelined")]
    [InlineData("DATA")]
    [InlineData("BDAT pipelined")]
    [InlineData("BDAT")]
    public async Task Timeout_waiting_for_the_final_reply_is_Unknown_with_TimedOut(string mode)
    {
        var clock = new ObservableTimeProvider();
        var endOfDataRead = new TaskCompletionSource();
        await using var server = ScriptedSmtpServer.Start(UpToTheEndOfData(mode).Signal(endOfDataRead).ExpectClosed());
        using var session = await ConnectedAsync(server, FakeClockOptions(clock, pipelining: mode.EndsWith("pipelined")));
        var armed = clock.ArmedCount(DataTerminationTimeout);

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText));
        await endOfDataRead.Task.Safe();
        await clock.WaitUntilArmedAsync(DataTerminationTimeout, armed + 1);
        clock.Advance(DataTerminationTimeout - TimeSpan.FromSeconds(1));
        send.IsCompleted.Should().BeFalse("the data termination timeout has not elapsed yet");
        clock.Advance(TimeSpan.FromSeconds(1));
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.IsTransientFailure.Should().BeFalse();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Timeout_waiting_for_the_reply_to_DATA_is_NotSent_with_TimedOut()
    {
        var clock = new ObservableTimeProvider();
        var answer = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA")
            .WaitFor(answer.Task).SendRaw("250 ok\r\n250 ok\r\n").ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, FakeClockOptions(clock));
        var armed = clock.ArmedCount(ReceiveTimeout);

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText));

        // The read of MAIL's reply waits (nothing is answered yet), so it arms the receive timer. Then both 250s come in
        // one write: RCPT's is taken from the buffer, and the read of DATA's reply, which never comes, arms it again. (A
        // read that completes at once arms no timer, so counting one arm per command raced with the replies' arrival.)
        await clock.WaitUntilArmedAsync(ReceiveTimeout, armed + 1);
        answer.SetResult();
        await clock.WaitUntilArmedAsync(ReceiveTimeout, armed + 2);
        clock.Advance(ReceiveTimeout);
        var result = await send.Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Recipients[0].Reply!.Code.Should().Be(250);
        result.DataReply.Should().BeNull();
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.IsTransientFailure.Should().BeTrue();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Cancellation_while_waiting_for_354_throws_and_sends_no_content(bool pipelining)
    {
        var waiting = new TaskCompletionSource();
        var script = pipelining
            ? Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok")
            : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok", "C> DATA");
        await using var server = ScriptedSmtpServer.Start(script.Signal(waiting).ExpectClosed());
        using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), cts.Token);
        await waiting.Task.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        server.ReceivedText.Should().EndWith("DATA\r\n");
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task Cancellation_in_the_middle_of_streamed_content_throws_and_never_ends_the_data(bool pipelining, bool chunking)
    {
        var firstPart = Lines(40, 50);
        var contentRead = new TaskCompletionSource();
        SmtpScript script;
        if (chunking)
        {
            // The first of several chunks waits for the envelope's replies, pipelined or not.
            script = pipelining
                ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
                : Script(Ehlo("CHUNKING"), "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok");
            script.ExpectRaw("BDAT 1024\r\n" + firstPart[..1024]);

            // Pipelined replies are read at the writer's next wait, which a cancelled send never reaches.
            script.Then(pipelining ? [] : ["S: 250 chunk ok"]);
        }
        else
        {
            script = pipelining
                ? Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
                : Script(Ehlo("8BITMIME"), "C: MAIL FROM:<sender@example.test> BODY=8BITMIME", "S: 250 ok", "C> RCPT TO:<one@example.test>", "S: 250 ok", "C> DATA", "S: 354 go ahead");
            script.ExpectRaw(firstPart);
        }

        await using var server = ScriptedSmtpServer.Start(script.Signal(contentRead).ExpectClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024 });
        using var cts = new CancellationTokenSource();
        var content = new Pipe();
        await content.Writer.WriteAsync(Encoding.ASCII.GetBytes(firstPart));

        var send = session.SendAsync(Envelope("one@example.test"), content.Reader, cts.Token);
        await contentRead.Task.Safe();
        await cts.CancelAsync();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse("a cancelled send closes the connection");
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);

        // The session keeps its reply pump from call to call: nothing of the cancelled send (replies it never read)
        // is waited for on a new connection.
        var next = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<two@example.test>")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued")
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<two@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go")
                .Then(DataLines(SmallText))
                .Then("S: 250 2.0.0 queued");
        await using var nextServer = ScriptedSmtpServer.Start(next);
        await session.ConnectAsync(nextServer.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();
        (await session.SendAsync(Envelope("two@example.test"), Ascii(SmallText)).Safe()).FinalReply!.Text.Should().Be("queued");
        session.PendingReplyCount.Should().Be(0);
        await nextServer.WaitAsync();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_cancelled_read_of_the_content_pipe_throws_and_never_ends_the_data(bool chunking)
    {
        var firstPart = Lines(40, 50);
        var contentRead = new TaskCompletionSource();
        var script = chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok")
                .ExpectRaw("BDAT 1024\r\n" + firstPart[..1024])
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
                .ExpectRaw(firstPart);
        await using var server = ScriptedSmtpServer.Start(script.Signal(contentRead).ExpectClosed());
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024 });
        var content = new Pipe();
        await content.Writer.WriteAsync(Encoding.ASCII.GetBytes(firstPart));

        var send = session.SendAsync(Envelope("one@example.test"), content.Reader);
        await contentRead.Task.Safe();
        content.Reader.CancelPendingRead();

        await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<OperationCanceledException>("CancelPendingRead is not the end of the content");
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_content_stream_that_fails_is_NotSent_with_its_exception_and_never_ends_the_data(bool chunking)
    {
        var firstPart = Lines(40, 50);
        SmtpScript script;
        if (chunking)
        {
            // Between chunks the wire is at a command boundary: the transaction is reset and the session stays usable.
            script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "S: 250 ok", "S: 250 ok");
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
        }
        else
        {
            script = Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go ahead")
                .ReadUntilClosed();
        }

        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions { DataFlushThreshold = 1024, ChunkSize = 1024 });

        var result = await session.SendAsync(Envelope("one@example.test"), new FailingStream(Encoding.ASCII.GetBytes(firstPart))).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        result.Exception!.InnerException!.Message.Should().Be("disk gone");
        session.IsConnected.Should().Be(chunking, "a message cut off inside DATA can only be abandoned by closing the connection");
        await server.WaitAsync();
        ShouldNotHaveEndedTheData(server);
    }

    [Fact]
    public async Task Cancellation_before_the_send_starts_throws_writes_nothing_and_keeps_the_session_usable()
    {
        // #17: nothing was written, so there is nothing to abort (before, the connection was closed).
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING"), "C: NOOP", "S: 250 Ok"));
        using var session = await ConnectedAsync(server);

        await FluentActions.Awaiting(() => session.SendAsync(Envelope("one@example.test"), Ascii(SmallText), new CancellationToken(true)).Safe())
            .Should().ThrowAsync<OperationCanceledException>();

        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
