using System.Collections.Concurrent;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>A peer's probes of <see cref="ResilientSmtpSender.SendBatchAsync"/> against the <see cref="ISmtpSender"/> contract.</summary>
public class ResilientSenderBatchBreakTests
{
    /// <summary>Stands for <see cref="SmtpSender"/>: refuses an envelope that cannot be written, accepts the rest and records them.</summary>
    private sealed class RecordingSender : ISmtpSender
    {
        public ConcurrentQueue<SmtpMessage> Sent { get; } = new();

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(message.Envelope.Size ?? 0, nameof(SmtpEnvelope.Size));
            Sent.Enqueue(message);
            return Task.FromResult(SmtpSendResult.Accepted(message.Envelope));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    [Fact]
    public async Task A_batch_with_an_envelope_that_cannot_be_written_sends_nothing_and_throws_ArgumentException()
    {
        // ISmtpSender.SendBatchAsync: "ArgumentException: An envelope cannot be written (nothing was sent)". The wrapper
        // started every message at once, so the valid first one was delivered and the caller, told "nothing was sent",
        // would send it again.
        var inner = new RecordingSender();
        await using var sender = inner.WithResilience(SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.Zero }));
        var valid = Message("a@example.test");
        var invalid = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "b@example.test") { Size = -1 }, "Subject: x\r\n\r\nx\r\n"u8.ToArray());

        await sender.Awaiting(s => s.SendBatchAsync([valid, invalid])).Should().ThrowAsync<ArgumentException>();

        inner.Sent.Should().BeEmpty("an envelope that cannot be written is checked before anything is sent");
    }
}

/// <summary>A peer's probes of what the caller gets when the standard pipeline's total timeout ends the retries.</summary>
public class TotalTimeoutAfterThrownAttemptsBreakTests
{
    [Fact]
    public async Task The_total_timeout_after_attempts_that_threw_gives_NotSent_TimedOut_not_a_NullReferenceException()
    {
        // Each attempt's delegate throws a transient I/O failure (say its own reconnect code): retried, nothing merged.
        // The total timeout then ended the retries and the merged result was built from no result at all.
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 10;
        options.Retry.Delay = TimeSpan.FromSeconds(5);
        options.Retry.BackoffType = Polly.DelayBackoffType.Constant;
        options.Retry.UseJitter = false;
        options.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(12);
        options.CircuitBreaker.MinimumThroughput = 100;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, time);
        var calls = 0;

        var send = pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
        {
            calls++;
            return Task.FromException<SmtpSendResult>(new IOException("The proxy reset the connection."));
        });
        for (var i = 0; i < 100 && !send.IsCompleted; i++)
        {
            await Task.Delay(10);
            time.Advance(TimeSpan.FromSeconds(1));
        }

        var result = await send.WaitAsync(TimeSpan.FromSeconds(30));
        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        result.Attempts.Should().Be(calls);
        calls.Should().BeGreaterThan(1);
    }
}

/// <summary>A peer's probes that held: what the caller gets when it cancels during a retry delay with nothing delivered.</summary>
public class RetryDelayCancellationProbeTests
{
    [Fact]
    public async Task Cancelled_during_the_delay_after_a_message_not_sent_throws_OperationCanceledException_not_an_unknown_outcome()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        var calls = 0;
        Task<SmtpSendResult> Send(SmtpMessage m, CancellationToken ct)
        {
            calls++;
            return Task.FromResult(SmtpSendResult.NotSent(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionRefused, "refused")));
        }

        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { Delay = TimeSpan.FromSeconds(2), UseJitter = false }, time);
        using var cts = new CancellationTokenSource();
        var send = pipeline.SendWithRetryAsync(Message("a@example.test", "b@example.test"), Send, cts.Token);
        calls.Should().Be(1);
        await cts.CancelAsync();

        var thrown = (await send.Awaiting(t => t.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<OperationCanceledException>()).Which;
        thrown.Should().NotBeOfType<SmtpOutcomeUnknownException>("nothing was delivered: the caller may send again");
        calls.Should().Be(1);
    }
}
