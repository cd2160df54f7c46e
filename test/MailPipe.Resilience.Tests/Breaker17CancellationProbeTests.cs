using Microsoft.Extensions.Time.Testing;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Breaker17 probes that held: the caller's cancellation at each point of <c>SendWithRetryAsync</c> — before the call,
/// during the delay after a partial acceptance, during the retry's attempt — and what the caller gets (the XML docs:
/// <see cref="OperationCanceledException"/> before any end of data, else <see cref="SmtpOutcomeUnknownException"/>
/// with the merged result).
/// </summary>
public class Breaker17CancellationProbeTests
{
    private static SmtpSendResult Partial(SmtpMessage m) => SmtpSendResult.Create(
        m.Envelope,
        SmtpSendOutcome.Accepted,
        new SmtpReply(250, "ok"),
        [new(m.Envelope.Recipients[0], new SmtpReply(250, "ok")), new(m.Envelope.Recipients[1], new SmtpReply(450, "busy"))],
        new SmtpReply(354, "go"),
        new SmtpReply(250, "queued"));

    [Fact]
    public async Task A_token_cancelled_before_the_call_sends_nothing_and_throws_OperationCanceledException()
    {
        var calls = 0;
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        var pipeline = SmtpResiliencePipelines.CreateStandard();

        var thrown = (await pipeline.Awaiting(p => p.SendWithRetryAsync(Message("a@example.test"), (m, ct) =>
        {
            calls++;
            ct.ThrowIfCancellationRequested();
            return Task.FromResult(SmtpSendResult.Accepted(m.Envelope));
        }, cts.Token)).Should().ThrowAsync<OperationCanceledException>()).Which;

        thrown.Should().NotBeOfType<SmtpOutcomeUnknownException>();
        calls.Should().BeLessThanOrEqualTo(1);
    }

    [Fact]
    public async Task Cancelled_during_the_delay_after_a_partial_acceptance_throws_the_unknown_outcome_with_the_merged_result_and_sends_no_more()
    {
        var time = new FakeTimeProvider();
        var sent = new List<string>();
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(2), UseJitter = false }, time);
        using var cts = new CancellationTokenSource();

        var send = pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), (m, _) =>
        {
            sent.AddRange(m.Envelope.Recipients.Select(r => r.Address));
            return Task.FromResult(Partial(m));
        }, cts.Token);
        await cts.CancelAsync();

        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;
        thrown.Result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "a@ accepted the message");
        thrown.Result.Recipients.Select(r => r.Reply!.Code).Should().Equal(250, 450);
        time.Advance(TimeSpan.FromMinutes(5));
        sent.Should().Equal("a@example.test", "b@example.test");
    }

    [Fact]
    public async Task Cancelled_during_the_retrys_attempt_throws_the_unknown_outcome_and_a_is_never_sent_again()
    {
        var sent = new List<string>();
        var retryStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero, MaxRetryAttempts = 3 });
        using var cts = new CancellationTokenSource();

        var send = pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), async (m, ct) =>
        {
            sent.AddRange(m.Envelope.Recipients.Select(r => r.Address));
            if (sent.Count == 2)
            {
                return Partial(m);
            }

            retryStarted.TrySetResult();
            await Task.Delay(Timeout.InfiniteTimeSpan, ct); // before its end of data: the caller cancels
            return SmtpSendResult.Accepted(m.Envelope);
        }, cts.Token);
        await retryStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<SmtpOutcomeUnknownException>()).Which;
        thrown.Result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        thrown.Result.Attempts.Should().Be(2);
        sent.Should().Equal("a@example.test", "b@example.test", "b@example.test");
    }
}
