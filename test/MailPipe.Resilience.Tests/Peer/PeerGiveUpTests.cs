using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Time.Testing;
using Polly.CircuitBreaker;
using PoolProxy = MailPipe.Tests.Pooling.FaultProxy;
using RecordingProxy = MailPipe.Resilience.Tests.Support.FaultProxy;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// What the caller gets when the pipeline gives up (the README: "Polly's own exceptions never reach the caller ... Only
/// the caller's cancellation throws"): the open circuit, the total timeout, a timeout or cancellation after the end of
/// data, the caller's cancellation during a retry delay; against the real Postfix behind a fault proxy.
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerGiveUpTests
{
    private static Action<SmtpStandardResilienceOptions> Breaker(int retries = 0) => PeerSupport.Fast(retries, o =>
    {
        o.CircuitBreaker.MinimumThroughput = 2;
        o.CircuitBreaker.FailureRatio = 0.5;
        o.CircuitBreaker.BreakDuration = TimeSpan.FromSeconds(30);
    });

    [Fact]
    public async Task Refused_connects_open_the_circuit_then_sends_are_NotSent_ServiceNotAvailable_without_a_connect()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var pooled = new SmtpSender(PeerSupport.Options(proxy.Port));
        await using var sender = pooled.WithStandardResilience(Breaker(), clock);

        for (var i = 0; i < 2; i++)
        {
            var failed = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-cb")).Message).WaitAsync(PeerSupport.Guard);
            failed.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            failed.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
        }

        var failures = pooled.GetStatistics().OpenFailures;
        var open = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-cb")).Message).WaitAsync(PeerSupport.Guard);

        open.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        open.IsTransientFailure.Should().BeTrue();
        var exception = open.Exception.Should().BeOfType<SmtpException>().Subject;
        exception.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        exception.InnerException.Should().BeOfType<BrokenCircuitException>();
        pooled.GetStatistics().OpenFailures.Should().Be(failures, "an open circuit sends nothing, not even a connect");
    }

    [Fact]
    public async Task A_circuit_that_opens_between_a_message_s_refused_connects_gives_it_NotSent_ServiceNotAvailable()
    {
        // Two refused connects of one message open the circuit (2 of 2 failed); its third attempt is refused by the circuit.
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(Breaker(retries: 2), clock);

        var result = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-cb-mid")).Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        var exception = result.Exception.Should().BeOfType<SmtpException>().Subject;
        exception.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, result.ToString());
        exception.InnerException.Should().BeOfType<BrokenCircuitException>();
        exception.Message.Should().Contain("refused", "the last attempt's failure is kept in the message");
    }

    [Fact]
    public async Task After_the_break_the_trial_send_to_a_server_that_is_back_is_delivered_once_and_closes_the_circuit()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(Breaker(), clock);
        for (var i = 0; i < 3; i++)
        {
            (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-cb2")).Message).WaitAsync(PeerSupport.Guard)).Outcome.Should().Be(SmtpSendOutcome.NotSent);
        }

        proxy.Accept();
        (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-cb2")).Message).WaitAsync(PeerSupport.Guard))
            .Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, "the break is not over");
        clock.Advance(TimeSpan.FromSeconds(31));

        var recipient = TestServers.UniqueRecipient("p18b-trial");
        var mail = PeerSupport.Mail(recipient);
        var trial = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);
        var next = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-trial-next")).Message).WaitAsync(PeerSupport.Guard);

        trial.Outcome.Should().Be(SmtpSendOutcome.Accepted, trial.ToString());
        next.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the trial's success closed the circuit");
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task Mailbox_refusals_at_the_real_server_never_open_the_circuit()
    {
        PeerSupport.RequireServers();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = new SmtpSender(PeerSupport.Options(TestServers.PostfixPort)).WithStandardResilience(Breaker(), clock);

        for (var i = 0; i < 4; i++)
        {
            var refused = await sender.SendAsync(PeerSupport.Mail(PeerSupport.TempFail, "nosuch-p18b@example.test").Message).WaitAsync(PeerSupport.Guard);
            refused.Outcome.Should().Be(SmtpSendOutcome.Refused);
        }

        var recipient = TestServers.UniqueRecipient("p18b-cb-mailbox");
        var mail = PeerSupport.Mail(recipient);
        (await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task The_total_timeout_during_a_retry_delay_after_refused_connects_returns_NotSent_TimedOut()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TaskCompletionSource? retrying = null;
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(o =>
        {
            o.Retry.MaxRetryAttempts = 5;
            o.Retry.Delay = TimeSpan.FromMinutes(4); // longer than the total (no jitter to shorten it): advancing past the total fires only that
            o.Retry.UseJitter = false;
            o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(60);
            o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
            retrying = PeerSupport.OnRetry(o);
        }, clock);

        var send = sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-total")).Message);
        await retrying!.Task.WaitAsync(PeerSupport.Guard);
        clock.Advance(TimeSpan.FromSeconds(61));
        var result = await send.WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeTrue();
        var exception = result.Exception.Should().BeOfType<SmtpException>().Subject;
        exception.ErrorCode.Should().Be(SmtpErrorCode.TimedOut, result.ToString());
        exception.Message.Should().Contain("refused", "the last attempt's failure is kept in the message");
    }

    [Fact]
    public async Task The_total_timeout_during_a_retry_delay_after_a_partial_acceptance_returns_the_merged_result()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        TaskCompletionSource? retrying = null;
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(o =>
        {
            o.Retry.Delay = TimeSpan.FromMinutes(4); // longer than the total (no jitter to shorten it): advancing past the total fires only that
            o.Retry.UseJitter = false;
            o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(60);
            o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
            retrying = PeerSupport.OnRetry(o);
        }, clock);
        var recipient = TestServers.UniqueRecipient("p18b-total-partial");
        var mail = PeerSupport.Mail(PeerSupport.TempFail, recipient);

        var send = sender.SendAsync(mail.Message);
        await retrying!.Task.WaitAsync(PeerSupport.Guard);
        clock.Advance(TimeSpan.FromSeconds(61));
        var result = await send.WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
        result.Recipients.Select(r => r.Reply!.Code).Should().Equal(450, 250);
        result.Attempts.Should().Be(1);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    private static ISmtpSender TimedSender(int port, bool chunking, FakeTimeProvider clock) =>
        new SmtpSender(PeerSupport.Options(port, o => o.Session = new SmtpSessionOptions { UseChunking = chunking }))
            .WithStandardResilience(o =>
            {
                o.Retry.Delay = TimeSpan.Zero;
                o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(60);
                o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(30);
            }, clock);

    [Fact]
    public async Task A_pipeline_timeout_while_the_reply_to_the_final_dot_is_held_returns_Unknown_and_never_resends()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort) { HoldRepliesAfterEndOfData = n => n == 1 };
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = TimedSender(proxy.Port, chunking: false, clock);
        var recipient = TestServers.UniqueRecipient("p18b-timeout-dot");
        var mail = PeerSupport.Mail(recipient);

        var send = sender.SendAsync(mail.Message);
        await proxy.EndOfDataHeld.Task.WaitAsync(PeerSupport.Guard);
        clock.Advance(TimeSpan.FromSeconds(61));
        var result = await send.WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.CountLines($"RCPT TO:<{recipient}>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_pipeline_timeout_while_the_reply_to_BDAT_LAST_is_withheld_returns_Unknown_and_never_resends()
    {
        PeerSupport.RequireServers();
        var release = new TaskCompletionSource();
        await using var proxy = new PoolProxy(TestServers.PostfixPort) { HoldDroppedConnection = release.Task };
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = TimedSender(proxy.Port, chunking: true, clock);
        var recipient = TestServers.UniqueRecipient("p18b-timeout-bdat");
        var mail = PeerSupport.Mail(recipient);
        proxy.DropNext(MailPipe.Tests.Pooling.DropPoint.AfterFinalDot);

        var send = sender.SendAsync(mail.Message);
        await Maildir.WaitForPostfixAsync(recipient);
        clock.Advance(TimeSpan.FromSeconds(61));
        var result = await send.WaitAsync(PeerSupport.Guard);
        release.SetResult();

        result.Outcome.Should().Be(SmtpSendOutcome.Unknown, result.ToString());
        result.Attempts.Should().Be(1);
        proxy.Connections.Should().Be(1, "an unknown outcome is never resent");
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task Cancelled_during_the_delay_after_a_refused_connect_throws_OperationCanceledException_and_sends_nothing()
    {
        PeerSupport.RequireServers();
        await using var proxy = new PoolProxy(TestServers.PostfixPort);
        await proxy.RefuseAsync();
        using var cts = new CancellationTokenSource();
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(o =>
        {
            o.Retry.Delay = TimeSpan.FromMinutes(10);
            PeerSupport.OnRetry(o, 1, () => cts.CancelAsync());
        });
        var recipient = TestServers.UniqueRecipient("p18b-cancel-notsent");
        var mail = PeerSupport.Mail(recipient);

        var act = () => sender.SendAsync(mail.Message, cts.Token).WaitAsync(PeerSupport.Guard);

        var thrown = await act.Should().ThrowAsync<OperationCanceledException>();
        thrown.Which.Should().NotBeOfType<SmtpOutcomeUnknownException>("nothing was written");
        proxy.Accept();
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail, 0)).Should().Be(0);
    }

    [Fact]
    public async Task Cancelled_during_the_delay_after_a_partial_acceptance_throws_the_unknown_outcome_whose_result_says_who_has_it()
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort);
        using var cts = new CancellationTokenSource();
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port)).WithStandardResilience(o =>
        {
            o.Retry.Delay = TimeSpan.FromMinutes(10);
            PeerSupport.OnRetry(o, 1, () => cts.CancelAsync());
        });
        var recipient = TestServers.UniqueRecipient("p18b-cancel-partial");
        var mail = PeerSupport.Mail(recipient, PeerSupport.TempFail);

        var act = () => sender.SendAsync(mail.Message, cts.Token).WaitAsync(PeerSupport.Guard);

        var thrown = await act.Should().ThrowAsync<SmtpOutcomeUnknownException>();
        thrown.Which.Result.AcceptedRecipients.Select(r => r.Address).Should().Equal(recipient);
        thrown.Which.Result.Recipients[1].Reply!.Code.Should().Be(450);
        proxy.CountLines($"RCPT TO:<{PeerSupport.TempFail}>").Should().Be(1);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Cancelled_while_the_reply_to_the_final_dot_is_held_throws_the_unknown_outcome_even_with_RetryUnknownOutcome(bool retryUnknown)
    {
        PeerSupport.RequireServers();
        await using var proxy = new RecordingProxy(TestServers.PostfixPort) { HoldRepliesAfterEndOfData = _ => true };
        using var cts = new CancellationTokenSource();
        await using var sender = new SmtpSender(PeerSupport.Options(proxy.Port, o => o.Session = PeerSupport.DataOnly))
            .WithStandardResilience(PeerSupport.Fast(3, o => o.Retry.RetryUnknownOutcome = retryUnknown));
        var recipient = TestServers.UniqueRecipient("p18b-cancel-dot");
        var mail = PeerSupport.Mail(recipient);

        var send = sender.SendAsync(mail.Message, cts.Token);
        await proxy.EndOfDataHeld.Task.WaitAsync(PeerSupport.Guard);
        await cts.CancelAsync();
        var act = () => send.WaitAsync(PeerSupport.Guard);

        var thrown = await act.Should().ThrowAsync<SmtpOutcomeUnknownException>();
        thrown.Which.Result.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        proxy.CountLines($"RCPT TO:<{recipient}>").Should().Be(1, "the caller's cancellation is never retried");
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }
}
