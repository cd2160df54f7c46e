using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.Resilience.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Polly;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>Issue #12 acceptance 1, 2 and the bare-session example, against the real Postfix (through a loopback fault proxy that records the transcript).</summary>
public class PostfixRetryTests
{
    private const string Sender = "sender@example.test";
    private const string TempFail = "tempfail@example.test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private static SmtpMessage Message(string subject, params string[] recipients)
    {
        var body = new StringBuilder($"From: <{Sender}>\r\nTo: <{string.Join(">, <", recipients)}>\r\nSubject: {subject}\r\nMessage-Id: <{Guid.NewGuid():N}@mailpipe.test>\r\n\r\n");
        for (var i = 0; i < 200; i++)
        {
            body.Append(CultureInvariant($"line-{i:D4} of a message sent by the MailPipe.Resilience integration tests\r\n"));
        }

        return SmtpMessage.FromBytes(new SmtpEnvelope(Sender, recipients), Encoding.ASCII.GetBytes(body.ToString()));
    }

    private static string CultureInvariant(FormattableString text) => FormattableString.Invariant(text);

    private static int StoredCopies(string recipient)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        return Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
    }

    /// <summary>Waits for the expected copies, then a little longer, so that a late extra copy would be seen.</summary>
    private static async Task<int> SettledCopiesAsync(string recipient, int expected)
    {
        await Maildir.WaitForPostfixAsync(recipient, expected);
        await Task.Delay(TimeSpan.FromSeconds(2));
        return StoredCopies(recipient);
    }

    [Fact]
    public async Task Acceptance_1_the_standard_pipeline_retries_only_tempfail_and_delivers_the_ordinary_recipient_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        var ordinary = TestServers.UniqueRecipient("resilience");
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = proxy.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
        }).WithStandardResilience(options =>
        {
            options.Retry.MaxRetryAttempts = 2;
            options.Retry.Delay = TimeSpan.Zero;
            options.Retry.ThrottledDelay = TimeSpan.Zero;
        });

        var result = await sender.SendAsync(Message("acceptance 1", TempFail, ordinary)).WaitAsync(Wait);

        proxy.CountLines($"RCPT TO:<{TempFail}>").Should().Be(3, proxy.ClientTranscript);
        proxy.CountLines($"RCPT TO:<{ordinary}>").Should().Be(1, proxy.ClientTranscript);
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(3);
        result.Recipients[0].Recipient.Address.Should().Be(TempFail);
        result.Recipients[0].Accepted.Should().BeFalse();
        result.Recipients[0].Reply!.Code.Should().Be(450);
        result.Recipients[1].Accepted.Should().BeTrue();
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal(ordinary);
        (await SettledCopiesAsync(ordinary, 1)).Should().Be(1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Acceptance_2_an_attempt_timeout_after_the_final_dot_is_Unknown_and_retried_only_with_the_opt_in(bool retryUnknown)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldRepliesAfterEndOfData = connection => connection == 1 };
        var recipient = TestServers.UniqueRecipient("held");
        var time = new FakeTimeProvider();
        var options = new SmtpStandardResilienceOptions();
        options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
        options.Retry.MaxRetryAttempts = 2;
        options.Retry.Delay = TimeSpan.Zero;
        options.Retry.RetryUnknownOutcome = retryUnknown;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);

        // A bare session (DATA, so that the end of data is the dot); the delegate reconnects when the session is not connected.
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = false });
        var send = pipeline.SendWithRetryAsync(Message("acceptance 2", recipient), async (message, ct) =>
        {
            if (!session.IsConnected)
            {
                await session.ConnectAsync(TestServers.Host, proxy.Port, SmtpTlsMode.None, "client.example.test", ct);
            }

            return await session.SendAsync(message, ct);
        });

        // Postfix has answered the dot; the proxy holds the reply. The attempt timeout fires (fake time).
        await Task.WhenAny(proxy.EndOfDataHeld.Task, send).WaitAsync(Wait);
        send.IsCompleted.Should().BeFalse("the client waits for the held reply; transcript: " + proxy.ClientTranscript);
        time.Advance(TimeSpan.FromSeconds(31));
        var result = await send.WaitAsync(Wait);

        if (!retryUnknown)
        {
            proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(1, proxy.ClientTranscript);
            result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
            result.Attempts.Should().Be(1);
            result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
            SmtpResiliencePredicates.Classify(result).Should().Be(SmtpFailureKind.Unknown);
            (await SettledCopiesAsync(recipient, 1)).Should().Be(1, "Postfix did take the message whose reply was held");
        }
        else
        {
            proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(2, proxy.ClientTranscript);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            result.Attempts.Should().Be(2);
            (await SettledCopiesAsync(recipient, 2)).Should().Be(2, "the opt-in resends a message that was in fact delivered: the duplicate it risks");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Acceptance_2_through_the_pooled_sender_with_the_standard_pipeline(bool retryUnknown)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldRepliesAfterEndOfData = connection => connection == 1 };
        var recipient = TestServers.UniqueRecipient("held-pool");
        var time = new FakeTimeProvider();
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = proxy.Port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "client.example.test",
            Session = new SmtpSessionOptions { UseChunking = false },
        }).WithStandardResilience(
            options =>
            {
                options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
                options.Retry.MaxRetryAttempts = 2;
                options.Retry.Delay = TimeSpan.Zero;
                options.Retry.RetryUnknownOutcome = retryUnknown;
            },
            time);

        var send = sender.SendAsync(Message("acceptance 2 (sender)", recipient));
        await Task.WhenAny(proxy.EndOfDataHeld.Task, send).WaitAsync(Wait);
        send.IsCompleted.Should().BeFalse("the sender waits for the held reply; transcript: " + proxy.ClientTranscript);
        time.Advance(TimeSpan.FromSeconds(31));
        var result = await send.WaitAsync(Wait);

        if (!retryUnknown)
        {
            proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(1, proxy.ClientTranscript);
            result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
            result.Attempts.Should().Be(1);
        }
        else
        {
            proxy.CountLinesStartingWith("MAIL FROM:").Should().Be(2, proxy.ClientTranscript);
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            result.Attempts.Should().Be(2);
        }
    }

    [Fact]
    public async Task A_bare_session_reconnects_after_a_dropped_connection_and_delivers_exactly_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);

        // The first connection breaks when the client asks for DATA (before any of the message reaches Postfix).
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { DropWhen = connection => connection == 1, DropMarker = "DATA\r\n" };
        var recipient = TestServers.UniqueRecipient("reconnect");
        var pipeline = SmtpResiliencePipelines.CreateStandard(new SmtpStandardResilienceOptions
        {
            Retry = { MaxRetryAttempts = 3, Delay = TimeSpan.Zero },
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { UseChunking = false });
        var connects = 0;

        var result = await pipeline.SendWithRetryAsync(Message("reconnect", recipient), async (message, ct) =>
        {
            if (!session.IsConnected)
            {
                connects++;
                await session.ConnectAsync(TestServers.Host, proxy.Port, SmtpTlsMode.None, "client.example.test", ct);
            }

            return await session.SendAsync(message, ct);
        }).WaitAsync(Wait);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(2);
        connects.Should().Be(2);
        proxy.Connections.Should().Be(2);
        (await SettledCopiesAsync(recipient, 1)).Should().Be(1);
        var stored = Encoding.ASCII.GetString((await Maildir.WaitForPostfixAsync(recipient))[0]);
        stored.Should().Contain("line-0000").And.Contain("line-0199", "the retry sent the whole message, not its rest");
        await session.QuitAsync();
    }
}
