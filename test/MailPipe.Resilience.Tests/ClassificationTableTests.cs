using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.Resilience.Tests.Support;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Polly;
using Polly.Timeout;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Issue #12 acceptance 4: the classification table of <see cref="SmtpResiliencePredicates"/>, one test per row, each
/// from a failure the library really produced against the scripted server (the TLS certificate and version rows
/// against the real Postfix, in <c>Integration/TlsClassificationTests</c>).
/// </summary>
public class ClassificationTableTests
{
    private static readonly string[] Transaction = ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<a@example.test>"];

    private static async Task<SmtpSendResult> SendAsync(params string[] afterGreeting)
    {
        await using var server = ScriptedSmtpServer.Start([.. Greeting, .. afterGreeting]);
        await using var session = await ConnectedAsync(server);
        return await session.SendAsync(Message("a@example.test")).Safe();
    }

    private static void ShouldBeTransient(SmtpSendResult result)
    {
        SmtpResiliencePredicates.Classify(result).Should().Be(SmtpFailureKind.Transient, result.ToString());
        SmtpResiliencePredicates.IsTransient(Outcome.FromResult(result)).Should().BeTrue();
    }

    private static void ShouldBePermanent(SmtpSendResult result)
    {
        SmtpResiliencePredicates.Classify(result).Should().Be(SmtpFailureKind.Permanent, result.ToString());
        SmtpResiliencePredicates.IsTransient(Outcome.FromResult(result)).Should().BeFalse();
    }

    // ---- Transient ----

    [Fact]
    public async Task Transient_connection_refused()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        await using var session = new AsyncSmtpSession();

        var error = (await FluentActions.Awaiting(() => session.ConnectAsync("127.0.0.1", port)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Transient);
    }

    [Fact]
    public async Task Transient_connection_closed_before_the_end_of_data()
    {
        var result = await SendAsync([.. Transaction, "DROP"]);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        ShouldBeTransient(result);
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeTrue();
    }

    [Fact]
    public async Task Transient_reply_timeout()
    {
        var time = new ObservableTimeProvider();
        var sent = new TaskCompletionSource();
        var script = SmtpScript.Parse([.. Greeting, "C: MAIL FROM:<sender@example.test>"]).Signal(sent).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = await ConnectedAsync(server, new SmtpSessionOptions { TimeProvider = time, ReceiveTimeout = TimeSpan.FromSeconds(30) });
        var armed = time.ArmedCount(TimeSpan.FromSeconds(30));

        var send = session.SendAsync(Message("a@example.test"));
        await sent.Task.Safe();

        // The server has read MAIL; the client arms its receive timer when its read of the reply starts waiting, which
        // can come after that: the clock moves only then (advanced before, the timer would be armed after the jump).
        await time.WaitUntilArmedAsync(TimeSpan.FromSeconds(30), armed + 1);
        time.Advance(TimeSpan.FromSeconds(31));
        var result = await send.Safe();

        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        ShouldBeTransient(result);
    }

    [Fact]
    public async Task Transient_attempt_timeout_before_the_end_of_data()
    {
        var time = new FakeTimeProvider();
        var sent = new TaskCompletionSource();
        var script = SmtpScript.Parse([.. Greeting, "C: MAIL FROM:<sender@example.test>"]).Signal(sent).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = await ConnectedAsync(server);
        var pipeline = new ResiliencePipelineBuilder<SmtpSendResult> { TimeProvider = time }.AddTimeout(TimeSpan.FromSeconds(5)).Build();

        var send = pipeline.ExecuteAsync(async ct => await session.SendAsync(Message("a@example.test"), ct)).AsTask();
        await sent.Task.Safe();
        time.Advance(TimeSpan.FromSeconds(6));
        var error = (await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<TimeoutRejectedException>()).Which;

        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Transient);
        SmtpResiliencePredicates.IsOutcomeUnknown(error).Should().BeFalse("nothing of the message was written");
    }

    [Fact]
    public async Task Transient_connection_lost_during_the_TLS_handshake()
    {
        await using var server = ScriptedSmtpServer.Start(
            "S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250 STARTTLS",
            "C: STARTTLS", "S: 220 2.0.0 go ahead", "CLOSE");
        var tls = new SmtpTlsOptions { TargetHost = "mail.example.test" };
        await using var session = await ConnectedAsync(server, new SmtpSessionOptions { Tls = tls });

        var error = (await FluentActions.Awaiting(() => session.StartTlsAsync().Safe()).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.TlsHandshakeFailed);
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Transient, error.ToString());
    }

    [Fact]
    public async Task Transient_421_service_not_available()
    {
        var result = await SendAsync("C: MAIL FROM:<sender@example.test>", "S: 421 4.3.2 shutting down", "EXPECT CLOSE");

        ShouldBeTransient(result);
        SmtpResiliencePredicates.IsThrottling(result).Should().BeTrue("421 gets the longer back-off");
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeTrue();
    }

    [Fact]
    public async Task Transient_4yz_to_a_recipient()
    {
        var result = await SendAsync([.. Transaction, "S: 450 4.2.0 mailbox busy", "C: RSET", "S: 250 ok"]);

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        ShouldBeTransient(result);
        SmtpResiliencePredicates.IsThrottling(result).Should().BeFalse();
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeFalse("a mailbox's refusal is not the server's failure");
    }

    [Fact]
    public async Task Transient_454_to_AUTH()
    {
        var reply = await AuthAsync("454 4.7.0 temporary authentication failure");

        SmtpResiliencePredicates.Classify(reply).Should().Be(SmtpFailureKind.Transient);
    }

    [Fact]
    public async Task Transient_4_7_x_rate_limit()
    {
        var result = await SendAsync([.. Transaction, "S: 450 4.7.1 rate limited, slow down", "C: RSET", "S: 250 ok"]);

        ShouldBeTransient(result);
        SmtpResiliencePredicates.IsThrottling(result).Should().BeTrue("4.7.x gets the longer back-off");
    }

    [Fact]
    public async Task Transient_MAIL_refused_right_after_a_refused_RSET()
    {
        await using var server = ScriptedSmtpServer.Start([.. Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<gone@example.test>", "S: 550 5.1.1 User unknown",
            "C: RSET", "S: 503 5.5.1 only BDAT permissible after non-LAST BDAT",
            "C: MAIL FROM:<sender@example.test>", "S: 503 5.5.1 only RSET accepted now"]);
        await using var session = await ConnectedAsync(server);

        var results = await session.SendBatchAsync([Message("gone@example.test"), Message("a@example.test")]).Safe();

        results[1].Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        ShouldBeTransient(results[1]);
    }

    // ---- Permanent ----

    [Fact]
    public async Task Permanent_5yz_to_a_recipient()
    {
        var result = await SendAsync([.. Transaction, "S: 550 5.1.1 no such user", "C: RSET", "S: 250 ok"]);

        ShouldBePermanent(result);
    }

    [Fact]
    public async Task Permanent_5yz_to_the_end_of_data()
    {
        var result = await SendAsync([.. Transaction, "S: 250 ok", "C: DATA", "S: 354 go", .. Data("554 5.7.1 rejected")]);

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        ShouldBePermanent(result);
    }

    [Fact]
    public async Task Permanent_5yz_to_AUTH()
    {
        var reply = await AuthAsync("535 5.7.8 authentication failed");

        SmtpResiliencePredicates.Classify(reply).Should().Be(SmtpFailureKind.Permanent);
    }

    [Fact]
    public async Task Permanent_protocol_violation()
    {
        var result = await SendAsync("C: MAIL FROM:<sender@example.test>", "S: hello there");

        result.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        ShouldBePermanent(result);
    }

    [Fact]
    public async Task Permanent_content_not_replayable()
    {
        await using var server = ScriptedSmtpServer.Start([.. Greeting, .. Transaction, "S: 250 ok", "C: DATA", "S: 354 go", .. Data("250 queued")]);
        await using var session = await ConnectedAsync(server);
        var message = SmtpMessage.FromPipeReader(new SmtpEnvelope(Sender, "a@example.test"), System.IO.Pipelines.PipeReader.Create(new System.Buffers.ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(Body))));
        (await session.SendAsync(message).Safe()).Outcome.Should().Be(SmtpSendOutcome.Accepted);

        var again = await session.SendAsync(message).Safe();

        again.Exception.Should().BeAssignableTo<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentNotReplayable);
        ShouldBePermanent(again);
    }

    // ---- Unknown ----

    [Fact]
    public async Task Unknown_connection_lost_after_the_final_dot()
    {
        var result = await SendAsync([.. Transaction, "S: 250 ok", "C: DATA", "S: 354 go", "C: Subject: retry", "C: ", "C: Hello.", "C: .", "DROP"]);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        SmtpResiliencePredicates.Classify(result).Should().Be(SmtpFailureKind.Unknown);
        SmtpResiliencePredicates.IsTransient(Outcome.FromResult(result)).Should().BeFalse();
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeTrue("the server took the content and dropped the connection: never resent, but counted by the circuit breaker");
    }

    [Fact]
    public async Task Unknown_cancelled_after_the_final_dot()
    {
        var ended = new TaskCompletionSource();
        var script = SmtpScript.Parse([.. Greeting, .. Transaction, "S: 250 ok", "C: DATA", "S: 354 go", "C: Subject: retry", "C: ", "C: Hello.", "C: ."]).Signal(ended).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = await ConnectedAsync(server);
        using var cts = new CancellationTokenSource();

        var send = session.SendAsync(Message("a@example.test"), cts.Token);
        await ended.Task.Safe();
        await cts.CancelAsync();
        var error = (await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;

        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Unknown);
        SmtpResiliencePredicates.IsTransient(error).Should().BeFalse();
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromException<SmtpSendResult>(error)).Should().BeFalse("the caller cancelled: not the server's failure");
    }

    [Fact]
    public async Task Unknown_inside_Pollys_TimeoutRejectedException()
    {
        var time = new FakeTimeProvider();
        var ended = new TaskCompletionSource();
        var script = SmtpScript.Parse([.. Greeting, .. Transaction, "S: 250 ok", "C: DATA", "S: 354 go", "C: Subject: retry", "C: ", "C: Hello.", "C: ."]).Signal(ended).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = await ConnectedAsync(server);
        var pipeline = new ResiliencePipelineBuilder<SmtpSendResult> { TimeProvider = time }.AddTimeout(TimeSpan.FromSeconds(5)).Build();

        var send = pipeline.ExecuteAsync(async ct => await session.SendAsync(Message("a@example.test"), ct)).AsTask();
        await ended.Task.Safe();
        time.Advance(TimeSpan.FromSeconds(6));
        var error = (await FluentActions.Awaiting(() => send.Safe()).Should().ThrowAsync<TimeoutRejectedException>()).Which;

        error.InnerException.Should().BeOfType<SmtpOutcomeUnknownException>();
        SmtpResiliencePredicates.Classify(error).Should().Be(SmtpFailureKind.Unknown);
        SmtpResiliencePredicates.IsTransient(Outcome.FromException<SmtpSendResult>(error)).Should().BeFalse("an unknown outcome is never retried by default");
        SmtpResiliencePredicates.IsOutcomeUnknown(Outcome.FromException<SmtpSendResult>(error)).Should().BeTrue();
        SmtpResiliencePredicates.IsServerFailure(Outcome.FromException<SmtpSendResult>(error)).Should().BeTrue("the attempt timed out waiting for the server after the end of data");
    }

    private static async Task<SmtpReply> AuthAsync(string reply)
    {
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0user\0secret"));
        await using var server = ScriptedSmtpServer.Start(
            "S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250 AUTH PLAIN",
            $"C: AUTH PLAIN {plain}", $"S: {reply}");
        await using var session = await ConnectedAsync(server, new SmtpSessionOptions { AllowCleartextAuthentication = true });
        return await session.AuthPlainAsync("user", "secret").Safe();
    }
}
