using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;

namespace MailPipe.Resilience;

/// <summary>
/// The standard pipeline of an SMTP sender (the twin of <c>HttpStandardResilienceOptions</c>), outermost first: a
/// total timeout, the retry (to the recipients still to do), a circuit breaker per server, an attempt timeout. Every
/// value can be bound from configuration (for example the section <c>SmtpResilience</c>, as in the package README and the sample).
/// </summary>
public sealed class SmtpStandardResilienceOptions
{
    /// <summary>The time for the whole send, all attempts and delays included.</summary>
    /// <value>The default is 5 minutes.</value>
    public TimeoutStrategyOptions TotalRequestTimeout { get; set; } = new() { Name = "SmtpTotalTimeout", Timeout = TimeSpan.FromMinutes(5) };

    /// <summary>
    /// The retry: 3 retries with exponential back-off and jitter from 2 s, longer after 421 or 4.7.x, never after an
    /// unknown outcome. <c>MaxRetryAttempts</c> = 0 for none: the pipeline then has no retry strategy, the others stay.
    /// </summary>
    public SmtpRetryStrategyOptions Retry { get; set; } = new();

    /// <summary>The circuit breaker of the server: opens when half the attempts of 30 s (at least 10) failed at the server.</summary>
    public SmtpCircuitBreakerStrategyOptions CircuitBreaker { get; set; } = new();

    /// <summary>
    /// The time for one attempt. It should exceed the sender's own timeouts (<c>SmtpTimeouts.Interactive</c>: 60 s
    /// for the end of data): an attempt timeout after the end of data gives an unknown outcome, which is not retried.
    /// </summary>
    /// <value>The default is 90 seconds.</value>
    public TimeoutStrategyOptions AttemptTimeout { get; set; } = new() { Name = "SmtpAttemptTimeout", Timeout = TimeSpan.FromSeconds(90) };

    /// <summary>Problems found while reading a configuration section (reported at start-up).</summary>
    internal List<string> BindingErrors { get; } = [];

    /// <summary>Where the settings came from, for the validation messages: <c>SmtpResilience:</c> for a section, <c>SmtpStandardResilienceOptions.</c> for code.</summary>
    internal string Source { get; set; } = "SmtpStandardResilienceOptions.";

    /// <summary>Checks what Polly does not: the four strategies are set, the retry's throttled delay is in range and its attempts 0 or more, and the total timeout is longer than one attempt's.</summary>
    internal void Validate()
    {
        if (TotalRequestTimeout is null || Retry is null || CircuitBreaker is null || AttemptTimeout is null)
        {
            throw new ArgumentException("TotalRequestTimeout, Retry, CircuitBreaker and AttemptTimeout must all be set.");
        }

        Retry.Validate();
        if (AttemptTimeout.Timeout >= TotalRequestTimeout.Timeout)
        {
            // As Microsoft.Extensions.Http.Resilience requires: else the total timeout cuts every slow attempt, after
            // its end of data too (an unknown outcome, not retried), and leaves no time for a retry.
            throw new ArgumentException($"TotalRequestTimeout:Timeout ({TotalRequestTimeout.Timeout:c}) must be longer than AttemptTimeout:Timeout ({AttemptTimeout.Timeout:c}): the total timeout would cut an attempt after its end of data too, an unknown outcome that is not retried, and leave no time for a retry.");
        }
    }
}

/// <summary>
/// A circuit breaker for one SMTP server: counts the attempts that failed at the server
/// (<see cref="SmtpResiliencePredicates.IsServerFailure"/>: connection failures, timeouts, 421, an unknown outcome the server caused), not a mailbox's
/// refusal.
/// </summary>
public class SmtpCircuitBreakerStrategyOptions : CircuitBreakerStrategyOptions<SmtpSendResult>
{
    /// <summary>Creates the options: failure ratio 0.5, at least 10 attempts in 30 s, open for 15 s.</summary>
    public SmtpCircuitBreakerStrategyOptions()
    {
        Name = "SmtpCircuitBreaker";
        FailureRatio = 0.5;
        MinimumThroughput = 10;
        SamplingDuration = TimeSpan.FromSeconds(30);
        BreakDuration = TimeSpan.FromSeconds(15);
        ShouldHandle = static args => new ValueTask<bool>(SmtpResiliencePredicates.IsServerFailure(args.Outcome));
    }
}

/// <summary>Builds MailPipe's pipelines.</summary>
public static class SmtpResiliencePipelines
{
    /// <summary>Builds the standard pipeline: total timeout, retry (none with <c>MaxRetryAttempts</c> = 0), circuit breaker, attempt timeout (see <see cref="SmtpStandardResilienceOptions"/>).</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The time of delays and timeouts (a <c>FakeTimeProvider</c> in tests); <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The pipeline. Build one per server, so that the circuit breaker is per server.</returns>
    /// <exception cref="ArgumentException">An option is missing or out of range (Polly validates its own options when the pipeline is built).</exception>
    public static ResiliencePipeline<SmtpSendResult> CreateStandard(SmtpStandardResilienceOptions? options = null, TimeProvider? timeProvider = null)
    {
        var builder = new ResiliencePipelineBuilder<SmtpSendResult>();
        if (timeProvider is not null)
        {
            builder.TimeProvider = timeProvider;
        }

        return builder.AddSmtpStandardResilience(options ?? new SmtpStandardResilienceOptions()).Build();
    }

    /// <summary>Builds a pipeline with only the SMTP retry.</summary>
    /// <param name="options">The options; <see langword="null"/> for the defaults.</param>
    /// <param name="timeProvider">The time of the delays; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <returns>The pipeline; with <c>MaxRetryAttempts</c> = 0 one without any strategy (one attempt per message).</returns>
    /// <exception cref="ArgumentException">An option is out of range: <c>MaxRetryAttempts</c> negative, <see cref="SmtpRetryStrategyOptions.ThrottledDelay"/> (Polly's validation of its own options throws <c>ValidationException</c>).</exception>
    public static ResiliencePipeline<SmtpSendResult> CreateRetry(SmtpRetryStrategyOptions? options = null, TimeProvider? timeProvider = null)
    {
        var builder = new ResiliencePipelineBuilder<SmtpSendResult>();
        if (timeProvider is not null)
        {
            builder.TimeProvider = timeProvider;
        }

        options ??= new SmtpRetryStrategyOptions();
        options.Validate();
        return options.Retries ? builder.AddRetry(options).Build() : builder.Build();
    }
}

/// <summary>Adds MailPipe's strategies to a Polly pipeline builder.</summary>
public static class SmtpResiliencePipelineBuilderExtensions
{
    /// <summary>
    /// Adds the strategies of the standard pipeline, outermost first: total timeout, retry, circuit breaker, attempt
    /// timeout. No retry strategy with <c>Retry.MaxRetryAttempts</c> = 0 (Polly's requires at least 1): one attempt
    /// per message, with the other three.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">The options.</param>
    /// <returns>The builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">An option is missing or out of range (Polly validates its own options when the pipeline is built).</exception>
    public static ResiliencePipelineBuilder<SmtpSendResult> AddSmtpStandardResilience(this ResiliencePipelineBuilder<SmtpSendResult> builder, SmtpStandardResilienceOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        builder.AddTimeout(options.TotalRequestTimeout);
        if (options.Retry.Retries)
        {
            builder.AddRetry(options.Retry);
        }

        return builder
            .AddCircuitBreaker(options.CircuitBreaker)
            .AddTimeout(options.AttemptTimeout);
    }
}
