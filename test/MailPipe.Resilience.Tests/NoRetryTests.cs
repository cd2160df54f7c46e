using Microsoft.Extensions.Time.Testing;
using Polly.CircuitBreaker;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// <c>Retry.MaxRetryAttempts</c> = 0 was refused (Polly's retry requires at least 1), so "no retries" could not be
/// said at all, from code or from configuration. Now 0 means no retry strategy: one attempt per message, with the
/// total timeout, the circuit breaker and the attempt timeout as usual; a negative value is still refused.
/// </summary>
public sealed class NoRetryTests
{
    private static SmtpStandardResilienceOptions NoRetries()
    {
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 0;
        options.CircuitBreaker.MinimumThroughput = 2;
        options.CircuitBreaker.FailureRatio = 0.5;
        options.CircuitBreaker.BreakDuration = TimeSpan.FromSeconds(30);
        return options;
    }

    private static SmtpSendResult Busy(SmtpMessage m) =>
        SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(m.Envelope.Recipients[0], new SmtpReply(451, "4.3.0 later"))]);

    [Fact]
    public async Task A_transient_refusal_is_returned_after_one_attempt()
    {
        var pipeline = SmtpResiliencePipelines.CreateStandard(NoRetries(), new FakeTimeProvider());
        var calls = 0;

        var result = await pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
        {
            calls++;
            return Task.FromResult(Busy(m));
        });

        calls.Should().Be(1);
        result.Attempts.Should().Be(1);
        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.Recipients[0].Reply!.Code.Should().Be(451);
    }

    [Fact]
    public async Task The_circuit_breaker_still_opens_after_the_servers_failures()
    {
        var pipeline = SmtpResiliencePipelines.CreateStandard(NoRetries(), new FakeTimeProvider());
        var calls = 0;
        Task<SmtpSendResult> Refuse(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.NotSent(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "nothing listens") { IsTransient = true }));
        }

        var first = await pipeline.SendWithRetryAsync(Message("a@example.test"), Refuse);
        var second = await pipeline.SendWithRetryAsync(Message("a@example.test"), Refuse);
        var third = await pipeline.SendWithRetryAsync(Message("a@example.test"), Refuse);

        first.Attempts.Should().Be(1);
        second.Attempts.Should().Be(1);
        calls.Should().Be(2, "two failed attempts of two open the circuit: the third message is not sent into it");
        third.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        third.Exception.Should().BeOfType<SmtpException>().Which.InnerException.Should().BeOfType<BrokenCircuitException>();
    }

    [Fact]
    public async Task The_attempt_timeout_still_ends_an_attempt_that_hangs()
    {
        var time = new FakeTimeProvider();
        var options = NoRetries();
        options.AttemptTimeout.Timeout = TimeSpan.FromSeconds(10);
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var calls = 0;

        var send = pipeline.SendWithRetryAsync(Message("a@example.test"), async (m, ct) =>
        {
            calls++;
            started.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            throw new InvalidOperationException("unreachable");
        });
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10));
        time.Advance(TimeSpan.FromSeconds(10));

        var result = await send.WaitAsync(TimeSpan.FromSeconds(10));
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.Attempts.Should().Be(1);
        calls.Should().Be(1, "a timed-out attempt before its end of data would be retried, but there are no retries");
    }

    [Fact]
    public async Task CreateRetry_with_no_retries_sends_once()
    {
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = 0 });
        var calls = 0;

        var result = await pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
        {
            calls++;
            return Task.FromResult(Busy(m));
        });

        calls.Should().Be(1);
        result.Attempts.Should().Be(1);
    }

    [Fact]
    public async Task WithStandardResilience_with_no_retries_sends_once_through_the_wrapped_sender()
    {
        var inner = new CountingSender();
        await using var sender = inner.WithStandardResilience(o => o.Retry.MaxRetryAttempts = 0);

        var result = await sender.SendAsync(Message("a@example.test"));

        inner.Calls.Should().Be(1);
        result.Attempts.Should().Be(1);
        result.Recipients[0].Reply!.Code.Should().Be(451);
    }

    [Fact]
    public void A_negative_number_of_retries_is_refused_naming_the_setting()
    {
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = -1;

        var standard = () => SmtpResiliencePipelines.CreateStandard(options);
        var retry = () => SmtpResiliencePipelines.CreateRetry(options.Retry);

        standard.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxRetryAttempts").WithMessage("MaxRetryAttempts must be 0 (no retries) or more.*");
        retry.Should().Throw<ArgumentOutOfRangeException>().WithParameterName("MaxRetryAttempts");
    }

    private sealed class CountingSender : ISmtpSender
    {
        public int Calls;

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(Busy(message));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
