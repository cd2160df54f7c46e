using MailPipe;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Configures a sender registered with <c>AddMailPipe</c> or <c>AddKeyedMailPipe</c>.</summary>
public static class MailPipeBuilderExtensions
{
    /// <summary>
    /// Changes the core's <see cref="SmtpSenderOptions"/> after the configuration keys are applied and before the
    /// sender is created (once, at its first use): settings with no configuration key, such as
    /// <see cref="SmtpSenderOptions.CredentialsProvider"/>, <see cref="SmtpSenderOptions.AccessTokenProvider"/>,
    /// <see cref="SmtpSenderOptions.MaxBatchSize"/> or <see cref="SmtpSenderOptions.Session"/>. A value the sender
    /// refuses (a <c>MaxBatchSize</c> of 0) stops the host's start, or fails the first resolve without a host, with an
    /// <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> naming the property.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="configure">Called with the container and the options.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IMailPipeBuilder ConfigureSender(this IMailPipeBuilder builder, Action<IServiceProvider, SmtpSenderOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure<MailPipeSenderSetup>(builder.Name, s => s.SenderActions.Add(configure));
        return builder;
    }

    /// <summary>
    /// Wraps the registered <see cref="ISmtpSender"/> (retry, telemetry, an outbox): the first decorator added wraps the
    /// <see cref="SmtpSender"/>, the next wraps that, and the outermost is what <see cref="ISmtpSender"/> resolves to.
    /// The <see cref="SmtpSender"/> itself stays registered (and is what the health check probes). This is the hook of
    /// packages that extend <see cref="IMailPipeBuilder"/>, such as MailPipe.Resilience.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="decorator">Returns the wrapper of the sender it is given (never null: resolving <see cref="ISmtpSender"/> then throws <see cref="InvalidOperationException"/>); a singleton, thread-safe as the sender is.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IMailPipeBuilder AddSenderDecorator(this IMailPipeBuilder builder, Func<IServiceProvider, ISmtpSender, ISmtpSender> decorator)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(decorator);
        builder.Services.Configure<MailPipeSenderSetup>(builder.Name, s => s.Decorators.Add(decorator));
        return builder;
    }

    /// <summary>
    /// Adds what the sender's MailPipe health check asks before it probes the server (see
    /// <see cref="IMailPipeHealthContributor"/>): the hook of packages that can stop the sender's sends, such as
    /// MailPipe.Resilience, whose <c>AddStandardResilience()</c> adds its circuit breaker's state this way.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="contributor">Returns the contributor (called on each health check run, from the container the check runs in: return a singleton that keeps the state).</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    public static IMailPipeBuilder AddHealthContributor(this IMailPipeBuilder builder, Func<IServiceProvider, IMailPipeHealthContributor> contributor)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(contributor);
        builder.Services.Configure<MailPipeSenderSetup>(builder.Name, s => s.HealthContributors.Add(contributor));
        return builder;
    }

    /// <summary>
    /// Adds a health check of this sender (see <see cref="MailPipeHealthChecksBuilderExtensions.AddMailPipe"/>): healthy
    /// when the pool can lend a connection (an idle one answers NOOP, or a new one opens and answers EHLO, within the
    /// pool's limit); degraded when every connection is sending (nothing to probe) or a new one fails while others are
    /// sending; unhealthy otherwise or after <paramref name="timeout"/>. A contributor (<see cref="AddHealthContributor"/>),
    /// such as MailPipe.Resilience's open circuit breaker, answers before the probe.
    /// </summary>
    /// <param name="builder">The sender's builder.</param>
    /// <param name="name">The check's name; default <c>mailpipe</c>, or <c>mailpipe-{key}</c> for a keyed sender.</param>
    /// <param name="failureStatus">The status when the check fails; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to select the check by (such as <c>ready</c>); <c>mailpipe</c> and <c>smtp</c> are always added.</param>
    /// <param name="timeout">How long the check may take; default 10 seconds.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>) or longer than 4294967294 ms.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> (or the default name) is already the name of another MailPipe sender's health check (in any case); the same sender's check added again is replaced instead.</exception>
    public static IMailPipeBuilder AddHealthCheck(this IMailPipeBuilder builder, string? name = null, HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddHealthChecks().AddMailPipe(builder.Name.Length == 0 ? null : builder.Name, name, failureStatus, tags, timeout);
        return builder;
    }
}
