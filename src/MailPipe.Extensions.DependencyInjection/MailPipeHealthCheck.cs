using MailPipe;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the health check of a MailPipe sender to <see cref="IHealthChecksBuilder"/>.</summary>
public static class MailPipeHealthChecksBuilderExtensions
{
    /// <summary>The tags every MailPipe health check carries.</summary>
    public static readonly IReadOnlyList<string> DefaultTags = ["mailpipe", "smtp"];

    /// <summary>Whether the sender of <paramref name="senderName"/> is registered (without making it).</summary>
    private static bool IsRegistered(IServiceProvider services, string senderName) => senderName.Length == 0
        ? services.GetService<IServiceProviderIsService>()?.IsService(typeof(SmtpSender)) ?? true
        : services.GetService<IServiceProviderIsKeyedService>()?.IsKeyedService(typeof(SmtpSender), senderName) ?? true;

    /// <summary>The registrations made here: only those are replaced by a later call, never a check of someone else's with the same name.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<HealthCheckRegistration, HealthCheckRegistration> Ours = new();

    /// <summary>
    /// Adds a health check of the sender registered by <c>AddMailPipe</c> (or <c>AddKeyedMailPipe</c> with
    /// <paramref name="serviceKey"/>). Healthy when the pool can lend a connection: an idle connection answers NOOP
    /// (RFC 5321 §4.1.1.9), or, with a free slot, a new connection opens and answers EHLO (after TLS and AUTH) and stays
    /// in the pool for the next message. <see cref="HealthStatus.Degraded"/> when every slot is sending (no probe is
    /// possible and the next message waits; a connection waiting for a server that stopped answering counts as sending
    /// until its reply timeout), or when a new connection fails while others are sending (a server at its connection
    /// limit). ASP.NET Core's health endpoint answers 200 for Degraded unless told otherwise. Called again for the same
    /// check name (a shared module and Program.cs), the last call's settings replace the earlier ones. The check takes one of
    /// the pool's slots, never a connection beyond <see cref="MailPipeOptions.Pool"/>'s <c>MaxConnections</c>, so a
    /// server's per-client connection limit does not refuse it. Unhealthy (or <paramref name="failureStatus"/>) when
    /// the connect, TLS, EHLO or AUTH fails with no other connection sending, or after <paramref name="timeout"/>, and
    /// when the sender's disposal began before the check ended (whatever the check found). The description is one line
    /// of at most 512 characters: line breaks and control characters of the server's reply text become spaces, and a
    /// longer text is cut with "…"; the whole reply stays in the result's exception. A check of a sender that is not
    /// registered (a typo in <paramref name="serviceKey"/>, <c>AddMailPipe</c> missing) stops the host's start with an
    /// <see cref="Microsoft.Extensions.Options.OptionsValidationException"/> that names it. Before it probes, the check
    /// asks the sender's <see cref="IMailPipeHealthContributor"/>s (<see cref="MailPipeBuilderExtensions.AddHealthContributor"/>)
    /// and reports the first answer instead: MailPipe.Resilience's open circuit breaker is Unhealthy (or
    /// <paramref name="failureStatus"/>) with the end of its break in the description.
    /// </summary>
    /// <param name="builder">The health checks builder (<c>services.AddHealthChecks()</c>).</param>
    /// <param name="serviceKey">The key of a keyed sender; <see langword="null"/> for the one of <c>AddMailPipe</c>.</param>
    /// <param name="name">The check's name; default <c>mailpipe</c>, or <c>mailpipe-{key}</c>.</param>
    /// <param name="failureStatus">The status when the check fails; default <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags to select the check by (such as <c>ready</c>); <see cref="DefaultTags"/> are always added.</param>
    /// <param name="timeout">How long the check may take; default 10 seconds. A connection still opening then joins the pool when done.</param>
    /// <returns>The same builder.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is zero or negative (other than <see cref="Timeout.InfiniteTimeSpan"/>) or longer than 4294967294 ms.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> (or the default name) is already the name of another MailPipe sender's health check (in any case); the same sender's check added again is replaced instead.</exception>
    public static IHealthChecksBuilder AddMailPipe(this IHealthChecksBuilder builder, string? serviceKey = null, string? name = null, HealthStatus? failureStatus = null, IEnumerable<string>? tags = null, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (timeout is { } t && t != Timeout.InfiniteTimeSpan && (t <= TimeSpan.Zero || t > SmtpSessionOptions.MaxTimeout))
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "The health check's timeout must be positive and at most 49 days (4294967294 ms), or Timeout.InfiniteTimeSpan.");
        }

        var senderName = serviceKey ?? string.Empty;
        var checkName = name ?? (serviceKey is null ? "mailpipe" : $"mailpipe-{serviceKey}");

        // The same name for another sender's check would replace it below (one check left, the other server checked by
        // nothing); ASP.NET Core takes names in any case as one.
        var taken = builder.Services
            .Where(static d => d.ServiceType == typeof(CheckOf) && !d.IsKeyedService)
            .Select(static d => (CheckOf)d.ImplementationInstance!)
            .FirstOrDefault(c => string.Equals(c.Name, checkName, StringComparison.OrdinalIgnoreCase));
        if (taken is not null && taken.Sender != senderName)
        {
            throw new ArgumentException($"The health check name '{checkName}' is already the check of {Describe(taken.Sender)}; the check of {Describe(senderName)} needs a name of its own (leave the name out for 'mailpipe' or 'mailpipe-{{key}}').", nameof(name));
        }

        if (taken is null)
        {
            builder.Services.AddSingleton(new CheckOf(checkName, senderName));

            // A check of a sender nobody registered (a typo in serviceKey, AddMailPipe missing) stops the start, as a wrong
            // setting does: else the application started and every health request threw, losing the other checks' answers too.
            builder.Services.AddOptions<HealthCheckServiceOptions>()
                .Validate<IServiceProvider>((_, sp) => IsRegistered(sp, senderName), $"The health check '{checkName}' is for {Describe(senderName)}, which is not registered: "
                    + (senderName.Length == 0 ? "call services.AddMailPipe(...) first" : $"call services.AddKeyedMailPipe(\"{senderName}\", ...), or give the key of a registered sender") + ".")
                .ValidateOnStart();
        }

        var checkTimeout = timeout ?? TimeSpan.FromSeconds(10);
        var registration = new HealthCheckRegistration(
            checkName,
            sp => new MailPipeHealthCheck(MailPipeServiceCollectionExtensions.GetSender(sp, senderName), checkTimeout, sp.GetService<TimeProvider>() ?? TimeProvider.System, Contributors(sp, senderName)),
            failureStatus,
            [.. DefaultTags.Concat(tags ?? []).Distinct(StringComparer.Ordinal)],
            Backstop(checkTimeout));
        Ours.AddOrUpdate(registration, registration);

        // Called again for the same check (a shared module and Program.cs): the last call's registration replaces the
        // earlier one of this method. Two of one name made every health request throw ("Duplicate health checks").
        builder.Services.Configure<HealthCheckServiceOptions>(options =>
        {
            foreach (var earlier in options.Registrations.Where(r => string.Equals(r.Name, registration.Name, StringComparison.OrdinalIgnoreCase) && Ours.TryGetValue(r, out _)).ToList())
            {
                options.Registrations.Remove(earlier);
            }

            options.Registrations.Add(registration);
        });
        return builder;
    }


    /// <summary>The sender's health contributors (<see cref="MailPipeBuilderExtensions.AddHealthContributor"/>), in the order added.</summary>
    private static IMailPipeHealthContributor[] Contributors(IServiceProvider services, string senderName) =>
        services.GetService<Microsoft.Extensions.Options.IOptionsMonitor<MailPipeSenderSetup>>()?.Get(senderName).HealthContributors.Select(f => f(services)).ToArray() ?? [];

    private static string Describe(string sender) => sender.Length == 0 ? "the default sender (AddMailPipe)" : $"the sender '{sender}' (AddKeyedMailPipe)";

    /// <summary>
    /// The registration's timeout: a backstop behind the check's own, which is the one reported (with what was tried).
    /// Five seconds later, so that a loaded machine's late timer does not let the backstop win; at most what
    /// <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> takes; none with an infinite check timeout.
    /// </summary>
    private static TimeSpan? Backstop(TimeSpan checkTimeout)
    {
        if (checkTimeout == Timeout.InfiniteTimeSpan)
        {
            return null;
        }

        return checkTimeout >= SmtpSessionOptions.MaxTimeout - TimeSpan.FromSeconds(5) ? SmtpSessionOptions.MaxTimeout : checkTimeout + TimeSpan.FromSeconds(5);
    }
}

/// <summary>The mark, in the service collection, that the MailPipe health check <paramref name="Name"/> checks the sender <paramref name="Sender"/> (empty for the default one).</summary>
internal sealed record CheckOf(string Name, string Sender);

/// <summary>
/// The check: <c>SmtpSender.CheckConnectionAsync</c> within a timeout, on the clock the sender has (the container's
/// <see cref="TimeProvider"/>). A sender whose disposal began before the check ended is reported as disposed, whatever
/// the check found; the description is one bounded line (<see cref="Bounded"/>). A contributor's answer (an open
/// circuit breaker) is reported instead of a probe.
/// </summary>
internal sealed class MailPipeHealthCheck(SmtpSender sender, TimeSpan timeout, TimeProvider timeProvider, IReadOnlyList<IMailPipeHealthContributor> contributors) : IHealthCheck
{
    /// <summary>The longest description, in characters: a reply line's limit (RFC 5321 §4.5.3.1.5, 512 octets).</summary>
    internal const int MaxDescriptionLength = 512;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        var statistics = sender.GetStatistics();
        var data = new Dictionary<string, object>
        {
            ["sender"] = sender.Name,
            ["idle"] = statistics.Idle,
            ["inUse"] = statistics.InUse,
            ["opening"] = statistics.Opening,
            ["pendingRequests"] = statistics.PendingRequests,
        };
        // Something that stops every send before the pool (an open circuit breaker) decides, whatever a probe would find.
        foreach (var contributor in contributors)
        {
            if (contributor.CheckHealth(context.Registration.FailureStatus) is { } said)
            {
                foreach (var entry in said.Data)
                {
                    data[entry.Key] = entry.Value;
                }

                return sender.IsDisposed ? Disposed(context, null, data) : new HealthCheckResult(said.Status, Bounded(said.Description ?? string.Empty), said.Exception, data);
            }
        }

        HealthCheckResult result;
        try
        {
            // The timeout counts from here, not from the first await: the check's synchronous start (a connect, cold
            // code on a loaded machine, a slow logger) is part of the time it takes.
            var started = timeProvider.GetTimestamp();
            var pending = sender.CheckConnectionAsync(cancellationToken);
            var remaining = timeout == Timeout.InfiniteTimeSpan ? timeout : TimeSpan.FromTicks(Math.Max(0, (timeout - timeProvider.GetElapsedTime(started)).Ticks));
            var check = await pending.WaitAsync(remaining, timeProvider, cancellationToken).ConfigureAwait(false);
            result = check.IsHealthy
                ? HealthCheckResult.Healthy(Bounded(check.Description), data)
                : new HealthCheckResult(check.IsDegraded ? Degraded(context.Registration.FailureStatus) : context.Registration.FailureStatus, Bounded(check.Description), check.Exception, data);
        }
        catch (TimeoutException ex)
        {
            result = new HealthCheckResult(context.Registration.FailureStatus, $"No connection to {sender.Name} could be lent or opened within {timeout.TotalSeconds:0.###} s.", ex, data);
        }
        catch (ObjectDisposedException ex)
        {
            return Disposed(context, ex, data);
        }

        // The disposal began while the check ran (after its last look): what the check found is being closed.
        return sender.IsDisposed ? Disposed(context, null, data) : result;
    }

    /// <summary>
    /// <paramref name="text"/> as one line of at most <see cref="MaxDescriptionLength"/> characters: line breaks, control
    /// and format characters (a server's multi-line reply, an escape sequence, a bidirectional override) become one
    /// space, and a longer text is cut with "…". A description lands in health reports, logs and dashboards; the
    /// server's reply text in it is the server's to choose (up to <c>MaxReplyBytes</c>, 256 KiB by default).
    /// </summary>
    internal static string Bounded(string text)
    {
        var builder = new System.Text.StringBuilder(Math.Min(text.Length, MaxDescriptionLength + 2));
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Control
                or System.Globalization.UnicodeCategory.Format or System.Globalization.UnicodeCategory.LineSeparator
                or System.Globalization.UnicodeCategory.ParagraphSeparator)
            {
                if (builder.Length > 0 && builder[^1] != ' ')
                {
                    builder.Append(' ');
                }
            }
            else if (builder.Length > MaxDescriptionLength)
            {
                break; // enough to know that it is cut
            }
            else
            {
                builder.Append(c);
            }
        }

        var line = builder.ToString().TrimEnd(' ');
        if (line.Length <= MaxDescriptionLength)
        {
            return line;
        }

        // Room for the ellipsis, never half of a surrogate pair.
        var keep = MaxDescriptionLength - 1;
        if (char.IsHighSurrogate(line[keep - 1]))
        {
            keep--;
        }

        return string.Concat(line.AsSpan(0, keep).TrimEnd(' '), "…");
    }

    private HealthCheckResult Disposed(HealthCheckContext context, Exception? exception, Dictionary<string, object> data) =>
        new(context.Registration.FailureStatus, $"The sender {sender.Name} is disposed (the application is stopping).", exception, data);

    /// <summary>Degraded, or the registration's failure status when that is milder (a check registered to fail as Healthy).</summary>
    private static HealthStatus Degraded(HealthStatus failureStatus) => failureStatus > HealthStatus.Degraded ? failureStatus : HealthStatus.Degraded;
}
