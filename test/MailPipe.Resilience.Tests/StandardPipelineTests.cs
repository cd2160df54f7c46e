using Microsoft.Extensions.Time.Testing;
using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>The standard pipeline's circuit breaker (per server, counting only the server's failures) and total timeout, on fake time.</summary>
public class StandardPipelineTests
{
    private static readonly SmtpEnvelope Envelope = new(Sender, "a@example.test");

    private static SmtpStandardResilienceOptions Options()
    {
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 1;
        options.Retry.Delay = TimeSpan.Zero;
        options.CircuitBreaker.MinimumThroughput = 2;
        options.CircuitBreaker.FailureRatio = 0.5;
        options.CircuitBreaker.BreakDuration = TimeSpan.FromSeconds(30);
        return options;
    }

    [Fact]
    public async Task The_circuit_opens_after_the_servers_failures_and_then_sends_nothing()
    {
        var pipeline = SmtpResiliencePipelines.CreateStandard(Options(), new FakeTimeProvider());
        var calls = 0;
        Task<SmtpSendResult> Refuse(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.NotSent(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "nothing listens")));
        }

        var first = await pipeline.SendWithRetryAsync(Message("a@example.test"), Refuse);
        var callsBefore = calls;
        var second = await pipeline.SendWithRetryAsync(Message("a@example.test"), Refuse);

        first.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        first.Attempts.Should().Be(2);
        calls.Should().Be(callsBefore, "the open circuit lets no attempt through");
        second.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = second.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable);
        error.IsTransient.Should().BeTrue();
        error.InnerException.Should().BeOfType<Polly.CircuitBreaker.BrokenCircuitException>();
    }

    [Fact]
    public async Task Unknown_outcomes_the_server_caused_open_the_circuit_without_a_resend()
    {
        var pipeline = SmtpResiliencePipelines.CreateStandard(Options(), new FakeTimeProvider());
        var calls = 0;
        Task<SmtpSendResult> Swallow(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.Unknown(m.Envelope, new SmtpException(SmtpErrorCode.TimedOut, "no reply to the end of data")));
        }

        var first = await pipeline.SendWithRetryAsync(Message("a@example.test"), Swallow);
        var second = await pipeline.SendWithRetryAsync(Message("a@example.test"), Swallow);
        var third = await pipeline.SendWithRetryAsync(Message("a@example.test"), Swallow);

        first.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        first.Attempts.Should().Be(1, "an unknown outcome is never sent again");
        second.Outcome.Should().Be(SmtpSendOutcome.Unknown);
        calls.Should().Be(2, "two attempts that the server swallowed open the circuit: the third message is not sent into it");
        third.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        third.Exception.Should().BeOfType<SmtpException>().Which.InnerException.Should().BeOfType<Polly.CircuitBreaker.BrokenCircuitException>();
    }

    [Fact]
    public async Task A_mailbox_refusal_does_not_open_the_circuit()
    {
        var pipeline = SmtpResiliencePipelines.CreateStandard(Options(), new FakeTimeProvider());
        var calls = 0;
        Task<SmtpSendResult> Busy(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(450, "4.2.0 mailbox busy"))]));
        }

        for (var i = 0; i < 5; i++)
        {
            (await pipeline.SendWithRetryAsync(Message("a@example.test"), Busy)).Attempts.Should().Be(2);
        }

        calls.Should().Be(10);
    }

    [Fact]
    public async Task The_total_timeout_during_a_delay_returns_the_attempts_made()
    {
        var time = new FakeTimeProvider();
        var options = Options();
        options.Retry.MaxRetryAttempts = 10;
        options.Retry.Delay = TimeSpan.FromSeconds(5);
        options.Retry.BackoffType = DelayBackoffType.Constant;
        options.Retry.UseJitter = false;
        options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(12);
        options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(10); // shorter than the total, as the pipeline requires
        options.CircuitBreaker.MinimumThroughput = 100;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);

        var send = pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
            Task.FromResult(SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(451, "4.3.0 later"))])));
        for (var i = 0; i < 20 && !send.IsCompleted; i++)
        {
            await Task.Delay(10);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var result = await send.WaitAsync(TimeSpan.FromSeconds(10));
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Attempts.Should().Be(3, "attempts at 0, 5 and 10 s; the total timeout of 12 s ends the delay before the fourth");
        result.Recipients[0].Reply!.Code.Should().Be(451);
    }

    [Fact]
    public void Invalid_options_are_refused_when_the_pipeline_is_built()
    {
        var options = new SmtpStandardResilienceOptions();
        options.Retry.ThrottledDelay = TimeSpan.FromDays(2);

        var act = () => SmtpResiliencePipelines.CreateStandard(options);

        act.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("ThrottledDelay");
    }
}
