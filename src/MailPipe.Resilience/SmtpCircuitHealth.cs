using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Polly.CircuitBreaker;

namespace MailPipe.Resilience;

/// <summary>
/// The circuit breaker of one sender's standard pipeline, as its MailPipe health check sees it
/// (<see cref="IMailPipeHealthContributor"/>, added by <c>AddStandardResilience()</c>): read with Polly's
/// <see cref="CircuitBreakerStateProvider"/> (the one set in the options, else one of its own), with the end of the
/// break kept from the breaker's <c>OnOpened</c> on the pipeline's clock. Open until then: the check's failure status;
/// open past it (no send came since, so Polly has not moved it on): the probe decides, as the next send is a trial;
/// half-open (a trial send running): Degraded; isolated by manual control: the failure status.
/// </summary>
internal sealed class SmtpCircuitHealth(string senderName) : IMailPipeHealthContributor
{
    private readonly Lock _lock = new();
    private CircuitBreakerStateProvider? _state;
    private TimeProvider _time = TimeProvider.System;
    private DateTimeOffset _openUntil;
    private string _sender = senderName;

    /// <summary>The pipeline's options with a copy of the circuit breaker's that this instance reads (the caller's options are left as they are).</summary>
    public SmtpStandardResilienceOptions Attach(SmtpStandardResilienceOptions options, TimeProvider time, string? sender)
    {
        var source = options.CircuitBreaker;
        var state = source?.StateProvider ?? new CircuitBreakerStateProvider();
        var breaker = source is null ? null : Copy(source, state, source.ManualControl, args =>
        {
            Opened(args.BreakDuration);
            return source.OnOpened?.Invoke(args) ?? default;
        });
        lock (_lock)
        {
            _state = source is null ? null : state;
            _time = time;
            _sender = sender ?? _sender;
        }

        return new SmtpStandardResilienceOptions
        {
            TotalRequestTimeout = options.TotalRequestTimeout,
            Retry = options.Retry,
            CircuitBreaker = breaker!,
            AttemptTimeout = options.AttemptTimeout,
        };
    }

    /// <summary>
    /// The options for the start-up check, which builds a breaker only to let Polly validate them: without the caller's
    /// <see cref="CircuitBreakerStateProvider"/> (Polly lets one serve a single breaker: the check's would take it from the
    /// real one) and <see cref="CircuitBreakerManualControl"/> (it would also isolate and close the check's breaker).
    /// </summary>
    public static SmtpCircuitBreakerStrategyOptions ForValidation(SmtpCircuitBreakerStrategyOptions source) =>
        Copy(source, null, null, source.OnOpened);

    private static SmtpCircuitBreakerStrategyOptions Copy(SmtpCircuitBreakerStrategyOptions source, CircuitBreakerStateProvider? state, CircuitBreakerManualControl? control, Func<OnCircuitOpenedArguments<SmtpSendResult>, ValueTask>? onOpened) => new()
    {
        Name = source.Name,
        FailureRatio = source.FailureRatio,
        MinimumThroughput = source.MinimumThroughput,
        SamplingDuration = source.SamplingDuration,
        BreakDuration = source.BreakDuration,
        BreakDurationGenerator = source.BreakDurationGenerator,
        ShouldHandle = source.ShouldHandle,
        OnClosed = source.OnClosed,
        OnHalfOpened = source.OnHalfOpened,
        OnOpened = onOpened,
        ManualControl = control,
        StateProvider = state,
    };

    /// <inheritdoc/>
    public HealthCheckResult? CheckHealth(HealthStatus failureStatus)
    {
        CircuitBreakerStateProvider? state;
        DateTimeOffset until;
        TimeProvider time;
        lock (_lock)
        {
            (state, until, time) = (_state, _openUntil, _time);
        }

        switch (state?.CircuitState)
        {
            case CircuitState.Open when time.GetUtcNow() < until:
                var at = until.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
                return new HealthCheckResult(failureStatus, $"The circuit breaker of {_sender} is open until {at} after repeated failures at the server: until then every send returns NotSent (ServiceNotAvailable) without a connection; the first send after it is a trial.", null, Data("Open", until));
            case CircuitState.HalfOpen:
                return new HealthCheckResult(failureStatus > HealthStatus.Degraded ? failureStatus : HealthStatus.Degraded, $"The circuit breaker of {_sender} is half-open: a trial send is running; other sends return NotSent (ServiceNotAvailable) without a connection until it succeeds.", null, Data("HalfOpen", null));
            case CircuitState.Isolated:
                return new HealthCheckResult(failureStatus, $"The circuit breaker of {_sender} is isolated (manual control): every send returns NotSent (ServiceNotAvailable) without a connection until it is closed.", null, Data("Isolated", null));
            default:
                // Closed, not built yet, or open past its break (the next send is a trial): the probe decides.
                return null;
        }
    }

    private void Opened(TimeSpan breakDuration)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            _openUntil = breakDuration >= DateTimeOffset.MaxValue - now ? DateTimeOffset.MaxValue : now + breakDuration;
        }
    }

    private static Dictionary<string, object> Data(string state, DateTimeOffset? until)
    {
        var data = new Dictionary<string, object> { ["circuitState"] = state };
        if (until is { } u)
        {
            data["circuitOpenUntil"] = u;
        }

        return data;
    }
}
