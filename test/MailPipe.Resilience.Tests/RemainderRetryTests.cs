using MailPipe.Resilience.Tests.Support;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>The retry that retries only what is left (issue #12): each retry goes to the recipients refused transiently, never again to one that accepted; one merged result.</summary>
public class RemainderRetryTests
{
    private static ResiliencePipeline<SmtpSendResult> Retry(int retries, bool retryUnknown = false) =>
        SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = retries, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero, RetryUnknownOutcome = retryUnknown });

    [Fact]
    public async Task A_retry_goes_only_to_the_recipient_refused_transiently_and_the_result_merges_the_attempts()
    {
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<ok@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 450 4.2.0 try again later",
            "C: DATA", "S: 354 go",
            .. Data("250 2.0.0 queued as A"),
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 451 4.3.0 still busy",
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("250 2.0.0 queued as B"),
        ]);
        await using var session = await ConnectedAsync(server);

        var result = await Retry(3).SendWithRetryAsync(Message("ok@example.test", "later@example.test"), session.SendAsync).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(3);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 250);
        result.FinalReply!.Text.Should().Contain("queued as B", "the replies to MAIL, DATA and the dot are those of the last accepted attempt");
        result.Envelope.Recipients.Select(r => r.Address).Should().Equal("ok@example.test", "later@example.test");
    }

    [Fact]
    public async Task A_recipient_refused_permanently_is_not_retried_and_keeps_its_reply()
    {
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<gone@example.test>", "S: 550 5.1.1 no such user",
            "C: RCPT TO:<later@example.test>", "S: 450 4.2.0 try again later",
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 450 4.2.0 try again later",
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<later@example.test>", "S: 450 4.2.0 try again later",
        ]);
        await using var session = await ConnectedAsync(server);

        var result = await Retry(2).SendWithRetryAsync(Message("gone@example.test", "later@example.test"), session.SendAsync).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Attempts.Should().Be(3);
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(550, 450);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_transient_refusal_of_the_data_sends_the_whole_message_again()
    {
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: RCPT TO:<b@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("451 4.3.0 temporary failure after end of data"),
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: RCPT TO:<b@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("250 queued"),
        ]);
        await using var session = await ConnectedAsync(server);

        var result = await Retry(1).SendWithRetryAsync(Message("a@example.test", "b@example.test"), session.SendAsync).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal("a@example.test", "b@example.test");
    }

    [Fact]
    public async Task An_unknown_outcome_is_not_retried()
    {
        // The connection is lost after the final dot: the server may have the message.
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            "C: Subject: retry", "C: ", "C: Hello.", "C: .",
            "DROP",
        ]);
        await using var session = await ConnectedAsync(server);
        var reconnects = 0;

        var result = await Retry(3).SendWithRetryAsync(Message("a@example.test"), (m, ct) =>
        {
            if (!session.IsConnected)
            {
                reconnects++;
            }

            return session.SendAsync(m, ct);
        }).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        result.Attempts.Should().Be(1);
        reconnects.Should().Be(0);
        SmtpResiliencePredicates.Classify(result).Should().Be(SmtpFailureKind.Unknown);
    }

    [Fact]
    public async Task With_the_opt_in_an_unknown_outcome_is_retried_on_a_new_connection()
    {
        await using var first = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            "C: Subject: retry", "C: ", "C: Hello.", "C: .",
            "DROP",
        ]);
        await using var second = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("250 queued"),
        ]);
        await using var session = await ConnectedAsync(first);

        var result = await Retry(1, retryUnknown: true).SendWithRetryAsync(Message("a@example.test"), async (m, ct) =>
        {
            if (!session.IsConnected)
            {
                await session.ConnectAsync(second.ClientStream, cancellationToken: ct);
                await session.EhloAsync("client.example.test", ct);
            }

            return await session.SendAsync(m, ct);
        }).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        await second.WaitAsync();
    }

    [Fact]
    public async Task A_failed_connect_thrown_by_the_delegate_is_retried_as_not_sent()
    {
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: DATA", "S: 354 go",
            .. Data("250 queued"),
        ]);
        await using var session = new AsyncSmtpSession();
        var connects = 0;

        var result = await Retry(2).SendWithRetryAsync(Message("a@example.test"), async (m, ct) =>
        {
            if (!session.IsConnected)
            {
                if (++connects == 1)
                {
                    throw new SmtpException(SmtpErrorCode.ConnectionRefused, "nothing listens");
                }

                await session.ConnectAsync(server.ClientStream, cancellationToken: ct);
                await session.EhloAsync("client.example.test", ct);
            }

            return await session.SendAsync(m, ct);
        }).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        connects.Should().Be(2);
    }

    [Fact]
    public async Task Content_that_cannot_be_replayed_stops_the_retries_with_ContentNotReplayable()
    {
        await using var server = ScriptedSmtpServer.Start(
        [
            .. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<a@example.test>", "S: 250 ok",
            "C: RCPT TO:<b@example.test>", "S: 450 4.2.0 later",
            "C: DATA", "S: 354 go",
            .. Data("250 queued"),
        ]);
        await using var session = await ConnectedAsync(server);
        var stream = new OneWayStream(System.Text.Encoding.ASCII.GetBytes(Body));
        var message = SmtpMessage.FromStream(new SmtpEnvelope(Sender, "a@example.test", "b@example.test"), stream);

        var result = await Retry(3).SendWithRetryAsync(message, session.SendAsync).Safe();

        result.Attempts.Should().Be(2);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Recipients[0].Reply!.Code.Should().Be(250);
        result.Recipients[1].Reply!.Code.Should().Be(450, "the second attempt sent nothing (ContentNotReplayable), so the first attempt's reply stands");
        result.Exception.Should().BeNull("the deciding attempt is the accepted one");
        await server.WaitAsync();
    }

    [Fact]
    public async Task The_back_off_is_exponential_with_jitter_and_longer_after_421_and_4_7_x()
    {
        var time = new FakeTimeProvider();
        var delays = new List<TimeSpan>();
        var options = new SmtpRetryStrategyOptions
        {
            MaxRetryAttempts = 3,
            Delay = TimeSpan.FromSeconds(2),
            ThrottledDelay = TimeSpan.FromSeconds(30),
            MaxDelay = TimeSpan.FromHours(1),
            OnRetry = args =>
            {
                delays.Add(args.RetryDelay);
                return default;
            },
        };
        var pipeline = SmtpResiliencePipelines.CreateRetry(options, time);
        var envelope = new SmtpEnvelope(Sender, "a@example.test");
        var replies = new Queue<SmtpSendResult>(
        [
            SmtpSendResult.Refused(envelope, new SmtpReply(451, "4.3.0 busy")),
            SmtpSendResult.Refused(envelope, new SmtpReply(450, "4.7.1 rate limited, slow down")),
            SmtpSendResult.NotSent(envelope, new SmtpException(SmtpErrorCode.ServiceNotAvailable, "421 closing")),
            SmtpSendResult.Accepted(envelope),
        ]);

        var task = pipeline.SendWithRetryAsync(Message("a@example.test"), (_, _) => Task.FromResult(replies.Dequeue()));
        while (!task.IsCompleted)
        {
            time.Advance(TimeSpan.FromMinutes(10));
            await Task.Yield();
        }

        var result = await task;
        result.Attempts.Should().Be(4);
        delays.Should().HaveCount(3);
        delays[0].Should().BeGreaterThan(TimeSpan.Zero).And.BeLessThan(TimeSpan.FromSeconds(30), "an ordinary 4yz gets the ordinary back-off");
        delays[1].Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(30 * 2 * 0.75), "4.7.x: 30 s × 2^1 with ±25 % jitter");
        delays[2].Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(30 * 4 * 0.75), "421: 30 s × 2^2 with ±25 % jitter");
    }

    private sealed class OneWayStream(byte[] content) : MemoryStream(content, writable: false)
    {
        public override bool CanSeek => false;
    }
}
