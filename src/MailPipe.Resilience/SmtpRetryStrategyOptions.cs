using Polly;
using Polly.Retry;

namespace MailPipe.Resilience;

/// <summary>
/// Retry options for SMTP sends (the twin of <c>HttpRetryStrategyOptions</c>): Polly's retry with SMTP defaults —
/// transient failures only, never an unknown outcome, exponential back-off with jitter, and a longer back-off after a
/// 421 or a 4.7.x reply. Used through <see cref="SmtpResilienceExtensions.SendWithRetryAsync(ResiliencePipeline{SmtpSendResult}, SmtpMessage, Func{SmtpMessage, CancellationToken, Task{SmtpSendResult}}, CancellationToken)"/>,
/// each retry goes only to the recipients still to do.
/// </summary>
/// <remarks>
/// <para>The default <see cref="RetryStrategyOptions{TResult}.ShouldHandle"/> decides, under
/// <c>SendWithRetryAsync</c>, whether a recipient is left that was refused transiently (4yz, or not reached because
/// of a transient failure), and otherwise — in any other pipeline, which resends whole messages —
/// <see cref="SmtpResiliencePredicates.IsTransient(Outcome{SmtpSendResult})"/>. Neither ever retries an unknown
/// outcome unless <see cref="RetryUnknownOutcome"/> is set.</para>
/// <para>Every property can be bound from configuration (<c>MaxRetryAttempts</c>, <c>Delay</c>, <c>MaxDelay</c>,
/// <c>BackoffType</c>, <c>UseJitter</c>, <see cref="ThrottledDelay"/>, <see cref="RetryUnknownOutcome"/>).</para>
/// <para><b>No retries:</b> <see cref="RetryStrategyOptions{TResult}.MaxRetryAttempts"/> = 0 (the configuration key
/// <c>Retry:MaxRetryAttempts</c> too) means one attempt per message. Polly's retry strategy requires at least 1, so
/// <see cref="SmtpResiliencePipelineBuilderExtensions.AddSmtpStandardResilience"/>, <see cref="SmtpResiliencePipelines.CreateStandard"/>
/// and <see cref="SmtpResiliencePipelines.CreateRetry"/> then add no retry strategy at all: the other strategies
/// (total timeout, circuit breaker, attempt timeout) work as usual, and the other retry settings are still checked.
/// A negative value is refused. Passing these options with 0 to Polly's own <c>AddRetry</c> fails as Polly does.</para>
/// </remarks>
public class SmtpRetryStrategyOptions : RetryStrategyOptions<SmtpSendResult>
{
    /// <summary>Creates the options with the SMTP defaults: 3 retries, exponential back-off from 2 s with jitter, at most 5 min between attempts.</summary>
    public SmtpRetryStrategyOptions()
    {
        Name = "SmtpRetry";
        MaxRetryAttempts = 3;
        Delay = TimeSpan.FromSeconds(2);
        MaxDelay = TimeSpan.FromMinutes(5);
        BackoffType = DelayBackoffType.Exponential;
        UseJitter = true;
        ShouldHandle = args => new ValueTask<bool>(ShouldRetry(args.Outcome, args.Context));
        DelayGenerator = args => new ValueTask<TimeSpan?>(ThrottledDelayFor(args.Outcome, args.AttemptNumber));
    }

    /// <summary>
    /// Retry a message whose outcome is unknown (its end of data was written and no reply came): it may then be
    /// delivered twice. Only for messages whose duplicates are harmless (the twin of not calling
    /// <c>DisableForUnsafeHttpMethods</c>).
    /// </summary>
    /// <value>The default is <see langword="false"/>.</value>
    public bool RetryUnknownOutcome { get; set; }

    /// <summary>
    /// The base delay after a reply that asks the client to slow down (421, or a 4.7.x rate limit; see
    /// <see cref="SmtpResiliencePredicates.IsThrottling(SmtpReply)"/>): the delay before retry <c>n</c> (0-based) is
    /// this times 2^n with ±25 % jitter (between zero and one day), capped by <see cref="RetryStrategyOptions{TResult}.MaxDelay"/>, and never
    /// shorter than the ordinary back-off. <see cref="TimeSpan.Zero"/> turns the longer back-off off.
    /// </summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan ThrottledDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether a retry strategy is added for these options: not for <c>MaxRetryAttempts</c> = 0 (no retries), which Polly's retry refuses.</summary>
    internal bool Retries => MaxRetryAttempts > 0;

    /// <summary>
    /// Checks what Polly does not: <see cref="ThrottledDelay"/>, and <c>MaxRetryAttempts</c> 0 or more (Polly checks
    /// its own properties when the pipeline is built, <c>MaxRetryAttempts</c> at least 1, but no strategy is added for 0).
    /// </summary>
    internal void Validate()
    {
        if (MaxRetryAttempts < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetryAttempts), MaxRetryAttempts, "MaxRetryAttempts must be 0 (no retries) or more.");
        }

        if (ThrottledDelay < TimeSpan.Zero || ThrottledDelay > TimeSpan.FromDays(1))
        {
            throw new ArgumentOutOfRangeException(nameof(ThrottledDelay), ThrottledDelay, "ThrottledDelay must be between zero and one day.");
        }
    }

    /// <summary>
    /// A copy for the check of the other settings with Polly's rules when <c>MaxRetryAttempts</c> is 0 or less (its
    /// own range is checked apart): every validated property as it is, <c>MaxRetryAttempts</c> 1.
    /// </summary>
    internal RetryStrategyOptions<SmtpSendResult> ForValidation() => Retries ? this : new RetryStrategyOptions<SmtpSendResult>
    {
        Name = Name,
        MaxRetryAttempts = 1,
        Delay = Delay,
        MaxDelay = MaxDelay,
        BackoffType = BackoffType,
        UseJitter = UseJitter,
        ShouldHandle = ShouldHandle,
        DelayGenerator = DelayGenerator,
        OnRetry = OnRetry,
        Randomizer = Randomizer,
    };

    /// <summary>The default retry decision (see the remarks of <see cref="SmtpRetryStrategyOptions"/>).</summary>
    private bool ShouldRetry(Outcome<SmtpSendResult> outcome, ResilienceContext context)
    {
        if (context.Properties.TryGetValue(RemainderSend.Key, out var send))
        {
            return send.ShouldRetry(outcome, RetryUnknownOutcome);
        }

        return SmtpResiliencePredicates.IsTransient(outcome)
            || (RetryUnknownOutcome && SmtpResiliencePredicates.IsOutcomeUnknown(outcome));
    }

    /// <summary>The longer delay after a 421 or a 4.7.x reply; <see langword="null"/> for the ordinary back-off.</summary>
    private TimeSpan? ThrottledDelayFor(Outcome<SmtpSendResult> outcome, int attempt)
    {
        if (ThrottledDelay <= TimeSpan.Zero || outcome is not { Result: { } result } || !SmtpResiliencePredicates.IsThrottling(result))
        {
            return null;
        }

        var ordinary = Delay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30));
        var jitter = 0.75 + (Randomizer() * 0.5);
        var milliseconds = Math.Max(ThrottledDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 30)) * jitter, ordinary);
        if (MaxDelay is { } max)
        {
            milliseconds = Math.Min(milliseconds, max.TotalMilliseconds);
        }

        return TimeSpan.FromMilliseconds(Math.Min(milliseconds, TimeSpan.FromDays(1).TotalMilliseconds));
    }
}
