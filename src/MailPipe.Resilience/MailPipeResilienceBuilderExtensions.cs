using System.ComponentModel.DataAnnotations;
using System.Globalization;
using MailPipe;
using MailPipe.Diagnostics;
using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.Telemetry;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Attaches MailPipe.Resilience to a sender registered with <c>AddMailPipe</c>/<c>AddKeyedMailPipe</c>:
/// <c>services.AddMailPipe(configuration.GetSection("Smtp")).AddStandardResilience();</c>
/// </summary>
public static class MailPipeResilienceBuilderExtensions
{
    private static readonly string[] s_knownKeys =
    [
        "TotalRequestTimeout:Timeout", "AttemptTimeout:Timeout",
        "Retry:MaxRetryAttempts", "Retry:Delay", "Retry:MaxDelay", "Retry:BackoffType", "Retry:UseJitter", "Retry:ThrottledDelay", "Retry:RetryUnknownOutcome",
        "CircuitBreaker:FailureRatio", "CircuitBreaker:MinimumThroughput", "CircuitBreaker:SamplingDuration", "CircuitBreaker:BreakDuration",
    ];

    /// <summary>
    /// Wraps the registered <see cref="ISmtpSender"/> in the standard pipeline (total timeout, retry only to the
    /// recipients still to do, circuit breaker for this server, attempt timeout; see
    /// <see cref="SmtpStandardResilienceOptions"/>). Results carry <see cref="SmtpSendResult.Attempts"/>. The options are
    /// named after the sender (<c>IOptionsMonitor&lt;SmtpStandardResilienceOptions&gt;.Get(builder.Name)</c>) and
    /// checked at start-up; the container's <see cref="TimeProvider"/> and <see cref="ILoggerFactory"/> are used when
    /// registered (Polly's telemetry: a log entry per attempt, retry and timeout, with the addresses of the result
    /// masked unless the sender logs addresses). Calling it again for the same sender adds configuration; the pipeline
    /// is still one.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="configure">Changes the defaults; <see langword="null"/> for the defaults.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    public static IMailPipeBuilder AddStandardResilience(this IMailPipeBuilder builder, Action<SmtpStandardResilienceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Services.AddOptions<SmtpStandardResilienceOptions>(builder.Name);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddDecorator(builder, options);
    }

    /// <summary>
    /// As <see cref="AddStandardResilience(IMailPipeBuilder, Action{SmtpStandardResilienceOptions}?)"/>, with the options
    /// read from a configuration section, key by key: <c>TotalRequestTimeout:Timeout</c>, <c>AttemptTimeout:Timeout</c>,
    /// <c>Retry:MaxRetryAttempts</c>, <c>Retry:Delay</c>, <c>Retry:MaxDelay</c>, <c>Retry:BackoffType</c>
    /// (Constant, Linear, Exponential), <c>Retry:UseJitter</c>, <c>Retry:ThrottledDelay</c>,
    /// <c>Retry:RetryUnknownOutcome</c>, <c>CircuitBreaker:FailureRatio</c>, <c>CircuitBreaker:MinimumThroughput</c>,
    /// <c>CircuitBreaker:SamplingDuration</c>, <c>CircuitBreaker:BreakDuration</c> (times as <c>hh:mm:ss</c>). A key
    /// that is not one of these, a value that cannot be read, or one out of Polly's range fails at start-up with a message naming the key (and the value).
    /// <c>Retry:MaxRetryAttempts</c> = 0 means no retries (the pipeline gets no retry strategy; the other keys still apply and are still checked); a negative value fails.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="section">The section, such as <c>configuration.GetSection("SmtpResilience")</c>.</param>
    /// <param name="configure">Changes applied after the section; <see langword="null"/> for none.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> or <paramref name="section"/> is null.</exception>
    public static IMailPipeBuilder AddStandardResilience(this IMailPipeBuilder builder, IConfigurationSection section, Action<SmtpStandardResilienceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(section);
        // The sections every call reads, so that a keyed sender's nested in the default one's (SmtpResilience:Bulk in
        // SmtpResilience) is not taken for unknown keys of it: filled while services are registered, read once built.
        var sections = builder.Services.FirstOrDefault(d => d.ServiceType == typeof(Sections) && !d.IsKeyedService)?.ImplementationInstance as Sections;
        if (sections is null)
        {
            sections = new Sections();
            builder.Services.AddSingleton(sections);
        }

        sections.Paths.Add(section.Path);

        // And for the senders' sections: a resilience section kept in the sender's own (Smtp:Resilience) is not an unknown key of Smtp.
        MailPipeConfiguredSections.Of(builder.Services).Add(section.Path);
        var options = builder.Services.AddOptions<SmtpStandardResilienceOptions>(builder.Name).Configure(o => Bind(section, o, sections));
        if (configure is not null)
        {
            options.Configure(configure);
        }

        return AddDecorator(builder, options);
    }

    private static IMailPipeBuilder AddDecorator(IMailPipeBuilder builder, OptionsBuilder<SmtpStandardResilienceOptions> options)
    {
        var name = builder.Name;

        // Attached once per sender: a second call (a shared module and Program.cs) only adds its configuration to the
        // same named options, as a second AddMailPipe does; a second decorator would retry inside the first's retries.
        if (builder.Services.Any(d => d.ServiceType == typeof(Attached) && d.ImplementationInstance is Attached a && a.Name == name))
        {
            return builder;
        }

        builder.Services.AddSingleton(new Attached(name));
        builder.Services.AddSingleton<IValidateOptions<SmtpStandardResilienceOptions>>(new Validator(name));
        options.ValidateOnStart();

        // The circuit breaker's state for the sender's health check (one per container, read through the DI package's hook).
        builder.Services.AddKeyedSingleton(name, (_, _) => new SmtpCircuitHealth(name.Length == 0 ? "the default sender" : name));
        builder.AddHealthContributor(services => services.GetRequiredKeyedService<SmtpCircuitHealth>(name));
        return builder.AddSenderDecorator((services, inner) =>
        {
            var settings = services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(name);
            var sender = inner as SmtpSender ?? (name.Length == 0 ? services.GetService<SmtpSender>() : services.GetKeyedService<SmtpSender>(name));
            var pipeline = new ResiliencePipelineBuilder<SmtpSendResult>
            {
                Name = name.Length == 0 ? "MailPipe" : $"MailPipe-{name}",

                // The sender's name (host:port, or the key) in Polly's logs and metrics: "Source: 'MailPipe/127.0.0.1:2525/SmtpRetry'"
                // rather than 'MailPipe/(null)/SmtpRetry'.
                InstanceName = sender?.Name,
                TimeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System,
            };
            if (services.GetService<ILoggerFactory>() is { } loggerFactory)
            {
                // Polly logs each attempt's result as text, and a reply names the mailbox (554 5.7.1 <x@y>: ...): masked
                // as the transcript masks it, unless the sender's connections log addresses (LogAddresses).
                var logAddresses = sender?.LogAddresses ?? false;
                pipeline.ConfigureTelemetry(new TelemetryOptions
                {
                    LoggerFactory = loggerFactory,
                    ResultFormatter = (_, result) => result is SmtpSendResult sent && !logAddresses ? SmtpAddressMask.InText(sent.ToString()) : result,
                });
            }

            var pipelineOptions = services.GetRequiredKeyedService<SmtpCircuitHealth>(name).Attach(settings, pipeline.TimeProvider ?? TimeProvider.System, sender?.Name);
            return new ResilientSmtpSender(inner, pipeline.AddSmtpStandardResilience(pipelineOptions).Build());
        });
    }

    /// <summary>
    /// The problems of the options (the binding's, else every strategy's value out of Polly's range, each named by its
    /// key with its value, else the order of the timeouts), or none.
    /// </summary>
    private static List<string> Check(SmtpStandardResilienceOptions options)
    {
        if (options.BindingErrors.Count > 0)
        {
            return [.. options.BindingErrors.Distinct(StringComparer.Ordinal)];
        }

        if (options.TotalRequestTimeout is null || options.Retry is null || options.CircuitBreaker is null || options.AttemptTimeout is null)
        {
            return ["MailPipe.Resilience: TotalRequestTimeout, Retry, CircuitBreaker and AttemptTimeout must all be set."];
        }

        // Strategy by strategy, so that every problem is reported and named: Polly's own message names neither the key
        // (AttemptTimeout and TotalRequestTimeout are both a TimeoutStrategyOptions with a Timeout) nor the value.
        var at = options.Source;
        var separator = at.EndsWith(':') ? ":" : ".";
        List<string> problems = [];
        Strategy(problems, options, at, separator, "TotalRequestTimeout", b => b.AddTimeout(options.TotalRequestTimeout));
        if (options.Retry.MaxRetryAttempts < 0)
        {
            // 0 is no retries (no strategy is added); Polly's own range (at least 1) would misstate it.
            problems.Add($"{at}Retry{separator}MaxRetryAttempts must be between 0 (no retries) and 2147483647; it is {options.Retry.MaxRetryAttempts.ToString(CultureInfo.InvariantCulture)}.");
        }

        Strategy(problems, options, at, separator, "Retry", b => b.AddRetry(options.Retry.ForValidation()));
        if (options.Retry.ThrottledDelay < TimeSpan.Zero || options.Retry.ThrottledDelay > TimeSpan.FromDays(1))
        {
            problems.Add($"{at}Retry{separator}ThrottledDelay must be between {TimeSpan.Zero:c} and {TimeSpan.FromDays(1):c}; it is {options.Retry.ThrottledDelay:c}.");
        }

        Strategy(problems, options, at, separator, "CircuitBreaker", b => b.AddCircuitBreaker(SmtpCircuitHealth.ForValidation(options.CircuitBreaker)));
        Strategy(problems, options, at, separator, "AttemptTimeout", b => b.AddTimeout(options.AttemptTimeout));
        if (problems.Count > 0)
        {
            return problems;
        }

        if (options.AttemptTimeout.Timeout >= options.TotalRequestTimeout.Timeout)
        {
            // Options.Validate's rule, with the keys named as above: with a sender per server, each section its own.
            return [$"{at}TotalRequestTimeout{separator}Timeout ({options.TotalRequestTimeout.Timeout:c}) must be longer than {at}AttemptTimeout{separator}Timeout ({options.AttemptTimeout.Timeout:c}): the total timeout would cut an attempt after its end of data too, an unknown outcome that is not retried, and leave no time for a retry."];
        }

        try
        {
            options.Validate();
            // Without the caller's state provider and manual control (SmtpCircuitHealth.ForValidation): a state provider serves one breaker only.
            var probe = new SmtpStandardResilienceOptions { TotalRequestTimeout = options.TotalRequestTimeout, Retry = options.Retry, CircuitBreaker = SmtpCircuitHealth.ForValidation(options.CircuitBreaker), AttemptTimeout = options.AttemptTimeout };
            _ = new ResiliencePipelineBuilder<SmtpSendResult>().AddSmtpStandardResilience(probe).Build();
            return problems;
        }
        catch (Exception ex) when (ex is ArgumentException or ValidationException)
        {
            return [$"MailPipe.Resilience: {ex.Message}"];
        }
    }

    /// <summary>Builds one strategy alone; Polly's "The field X must be ..." lines become "{key} must be ...; it is {value}."</summary>
    private static void Strategy(List<string> problems, SmtpStandardResilienceOptions options, string at, string separator, string group, Action<ResiliencePipelineBuilder<SmtpSendResult>> add)
    {
        try
        {
            var builder = new ResiliencePipelineBuilder<SmtpSendResult>();
            add(builder);
            _ = builder.Build();
        }
        catch (ValidationException ex)
        {
            const string Field = "The field ";
            var named = 0;
            foreach (var line in ex.Message.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var end = line.StartsWith(Field, StringComparison.Ordinal) ? line.IndexOf(' ', Field.Length) : -1;
                if (end < 0)
                {
                    continue;
                }

                var field = line[Field.Length..end];
                var rule = line[(end + 1)..].TrimEnd('.');
                problems.Add(ValueOf(options, group, field) is { } value
                    ? $"{at}{group}{separator}{field} {rule}; it is {value}."
                    : $"{at}{group}{separator}{field} {rule}.");
                named++;
            }

            if (named == 0)
            {
                problems.Add($"MailPipe.Resilience: {at}{group}: {ex.Message}");
            }
        }
    }

    /// <summary>The value of a strategy's setting as the configuration writes it, or <see langword="null"/> for a setting without a key.</summary>
    private static string? ValueOf(SmtpStandardResilienceOptions options, string group, string field)
    {
        object? value = (group, field) switch
        {
            ("TotalRequestTimeout", "Timeout") => options.TotalRequestTimeout.Timeout,
            ("AttemptTimeout", "Timeout") => options.AttemptTimeout.Timeout,
            ("Retry", "MaxRetryAttempts") => options.Retry.MaxRetryAttempts,
            ("Retry", "Delay") => options.Retry.Delay,
            ("Retry", "MaxDelay") => options.Retry.MaxDelay,
            ("CircuitBreaker", "FailureRatio") => options.CircuitBreaker.FailureRatio,
            ("CircuitBreaker", "MinimumThroughput") => options.CircuitBreaker.MinimumThroughput,
            ("CircuitBreaker", "SamplingDuration") => options.CircuitBreaker.SamplingDuration,
            ("CircuitBreaker", "BreakDuration") => options.CircuitBreaker.BreakDuration,
            _ => null,
        };
        return value switch
        {
            TimeSpan time => time.ToString("c", CultureInfo.InvariantCulture),
            IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
            _ => null,
        };
    }

    private static void Bind(IConfigurationSection section, SmtpStandardResilienceOptions options, Sections sections)
    {
        var errors = options.BindingErrors;
        var prefix = section.Path + ":";
        options.Source = prefix;
        Read<TimeSpan>(section, "TotalRequestTimeout:Timeout", prefix, errors, TryParseTime, v => options.TotalRequestTimeout.Timeout = v);
        Read<TimeSpan>(section, "AttemptTimeout:Timeout", prefix, errors, TryParseTime, v => options.AttemptTimeout.Timeout = v);
        Read<int>(section, "Retry:MaxRetryAttempts", prefix, errors, int.TryParse, v => options.Retry.MaxRetryAttempts = v);
        Read<TimeSpan>(section, "Retry:Delay", prefix, errors, TryParseTime, v => options.Retry.Delay = v);
        Read<TimeSpan>(section, "Retry:MaxDelay", prefix, errors, TryParseTime, v => options.Retry.MaxDelay = v);
        Read<DelayBackoffType>(section, "Retry:BackoffType", prefix, errors, TryParseBackoff, v => options.Retry.BackoffType = v, string.Join(", ", Enum.GetNames<DelayBackoffType>()));
        Read<bool>(section, "Retry:UseJitter", prefix, errors, static (string s, IFormatProvider _, out bool v) => bool.TryParse(s, out v), v => options.Retry.UseJitter = v);
        Read<TimeSpan>(section, "Retry:ThrottledDelay", prefix, errors, TryParseTime, v => options.Retry.ThrottledDelay = v);
        Read<bool>(section, "Retry:RetryUnknownOutcome", prefix, errors, static (string s, IFormatProvider _, out bool v) => bool.TryParse(s, out v), v => options.Retry.RetryUnknownOutcome = v);
        Read<double>(section, "CircuitBreaker:FailureRatio", prefix, errors, static (string s, IFormatProvider p, out double v) => double.TryParse(s, NumberStyles.Float, p, out v), v => options.CircuitBreaker.FailureRatio = v);
        Read<int>(section, "CircuitBreaker:MinimumThroughput", prefix, errors, int.TryParse, v => options.CircuitBreaker.MinimumThroughput = v);
        Read<TimeSpan>(section, "CircuitBreaker:SamplingDuration", prefix, errors, TryParseTime, v => options.CircuitBreaker.SamplingDuration = v);
        Read<TimeSpan>(section, "CircuitBreaker:BreakDuration", prefix, errors, TryParseTime, v => options.CircuitBreaker.BreakDuration = v);
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (!string.IsNullOrEmpty(value) && !s_knownKeys.Contains(key, StringComparer.OrdinalIgnoreCase) && !sections.Nested(section.Path, key))
            {
                errors.Add($"{prefix}{key} is not a MailPipe.Resilience setting. The settings are: {string.Join(", ", s_knownKeys)}.");
            }
        }
    }

    /// <summary>Fails start-up with the first problem of the named options, in words.</summary>
    private sealed class Validator(string name) : IValidateOptions<SmtpStandardResilienceOptions>
    {
        public ValidateOptionsResult Validate(string? optionsName, SmtpStandardResilienceOptions options) =>
            optionsName != name ? ValidateOptionsResult.Skip
            : Check(options) is { Count: > 0 } problems ? ValidateOptionsResult.Fail(problems)
            : ValidateOptionsResult.Success;
    }

    /// <summary>The mark that the standard pipeline is attached to the sender <see cref="Name"/>.</summary>
    private sealed record Attached(string Name);

    /// <summary>The configuration sections read by the <c>AddStandardResilience</c> calls of one service collection.</summary>
    private sealed class Sections
    {
        public HashSet<string> Paths { get; } = new(StringComparer.OrdinalIgnoreCase);

        /// <summary>Whether <paramref name="relativeKey"/> of <paramref name="sectionPath"/> lies in another section read, nested in this one.</summary>
        public bool Nested(string sectionPath, string relativeKey) =>
            Paths.Any(path => path.StartsWith(sectionPath + ":", StringComparison.OrdinalIgnoreCase)
                && (sectionPath + ":" + relativeKey).StartsWith(path + ":", StringComparison.OrdinalIgnoreCase));
    }

    private delegate bool TryParse<T>(string text, IFormatProvider provider, out T value);

    /// <summary>hh:mm:ss or d.hh:mm:ss only: a bare number ("2") would be read as days (a retry delay of two days for someone who meant seconds).</summary>
    private static bool TryParseTime(string text, IFormatProvider provider, out TimeSpan value) =>
        TimeSpan.TryParse(text, provider, out value) && text.Contains(':', StringComparison.Ordinal);

    /// <summary>By name only (any case): a number, or names joined by commas (which Enum.TryParse ORs), would pick a back-off nobody reading the file can see.</summary>
    private static bool TryParseBackoff(string text, IFormatProvider provider, out DelayBackoffType value)
    {
        foreach (var type in Enum.GetValues<DelayBackoffType>())
        {
            if (string.Equals(text.Trim(), type.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                value = type;
                return true;
            }
        }

        value = default;
        return false;
    }

    private static void Read<T>(IConfigurationSection section, string key, string prefix, List<string> errors, TryParse<T> parse, Action<T> set, string? names = null)
    {
        var text = section[key];
        if (string.IsNullOrEmpty(text))
        {
            return;
        }

        if (parse(text, CultureInfo.InvariantCulture, out var value))
        {
            set(value);
        }
        else
        {
            errors.Add($"{prefix}{key} = '{text}' cannot be read as {typeof(T).Name}{(names is null ? string.Empty : $"; use one of: {names}")}.");
        }
    }
}
