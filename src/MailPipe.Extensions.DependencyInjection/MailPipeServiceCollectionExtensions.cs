using System.Diagnostics.Metrics;
using MailPipe;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Registers MailPipe's shared sender: one <see cref="SmtpSender"/> (a pool of connections) per SMTP server, as a
/// singleton <see cref="ISmtpSender"/>, the way <c>AddNpgsqlDataSource</c> registers a data source.
/// </summary>
public static class MailPipeServiceCollectionExtensions
{
    /// <summary>
    /// Registers a singleton <see cref="ISmtpSender"/> (and the <see cref="SmtpSender"/> behind it) configured from a
    /// configuration section, such as <c>configuration.GetSection("Smtp")</c>. The settings are checked when the
    /// host starts: a missing or wrong setting stops the start with an <see cref="OptionsValidationException"/> whose
    /// messages name the key; a port and TLS mode against the usual convention (465 with STARTTLS, 587 or 25 with
    /// implicit TLS; RFC 8314 §3.3) are logged as a warning (<see cref="MailPipeEventId.PortTlsModeMismatch"/>,
    /// category <c>MailPipe.Configuration</c>), not refused. The sender gets <see cref="ILoggerFactory"/>, <see cref="TimeProvider"/> and
    /// <see cref="IMeterFactory"/> from the container when they are registered. Calling it again for the same sender
    /// adds configuration; the sender is still one.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configuration">The section: <c>Host</c>, <c>Port</c>, <c>TlsMode</c>, ... (see <see cref="MailPipeOptions"/>).</param>
    /// <param name="configure">Changes after the section is read; <see langword="null"/> for none.</param>
    /// <returns>A builder to add a health check, decorators and other packages' extensions.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="configuration"/> is null.</exception>
    public static IMailPipeBuilder AddMailPipe(this IServiceCollection services, IConfigurationSection configuration, Action<MailPipeOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return Add(services, Options.Options.DefaultName, configuration, configure);
    }

    /// <summary>Registers a singleton <see cref="ISmtpSender"/> configured in code (see <see cref="AddMailPipe(IServiceCollection, IConfigurationSection, Action{MailPipeOptions}?)"/>).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets <see cref="MailPipeOptions.Host"/>, <see cref="MailPipeOptions.TlsMode"/> and the rest.</param>
    /// <returns>A builder to add a health check, decorators and other packages' extensions.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="configure"/> is null.</exception>
    public static IMailPipeBuilder AddMailPipe(this IServiceCollection services, Action<MailPipeOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, Options.Options.DefaultName, null, configure);
    }

    /// <summary>
    /// Registers a keyed singleton <see cref="ISmtpSender"/> (and <see cref="SmtpSender"/>) for one of several SMTP
    /// servers, configured from a section; inject it with <c>[FromKeyedServices("key")] ISmtpSender sender</c>. Its
    /// logs and metrics carry the key as the sender's name.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="serviceKey">The key, such as <c>"transactional"</c>; also the name of its <see cref="MailPipeOptions"/>.</param>
    /// <param name="configuration">The section, such as <c>configuration.GetSection("Smtp:Transactional")</c>.</param>
    /// <param name="configure">Changes after the section is read; <see langword="null"/> for none.</param>
    /// <returns>A builder to add a health check, decorators and other packages' extensions.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="serviceKey"/> is empty or white space.</exception>
    public static IMailPipeBuilder AddKeyedMailPipe(this IServiceCollection services, string serviceKey, IConfigurationSection configuration, Action<MailPipeOptions>? configure = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceKey);
        ArgumentNullException.ThrowIfNull(configuration);
        return Add(services, serviceKey, configuration, configure);
    }

    /// <summary>Registers a keyed singleton <see cref="ISmtpSender"/> configured in code (see <see cref="AddKeyedMailPipe(IServiceCollection, string, IConfigurationSection, Action{MailPipeOptions}?)"/>).</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="serviceKey">The key; also the name of its <see cref="MailPipeOptions"/>.</param>
    /// <param name="configure">Sets <see cref="MailPipeOptions.Host"/>, <see cref="MailPipeOptions.TlsMode"/> and the rest.</param>
    /// <returns>A builder to add a health check, decorators and other packages' extensions.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="serviceKey"/> is empty or white space.</exception>
    public static IMailPipeBuilder AddKeyedMailPipe(this IServiceCollection services, string serviceKey, Action<MailPipeOptions> configure)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(serviceKey);
        ArgumentNullException.ThrowIfNull(configure);
        return Add(services, serviceKey, null, configure);
    }

    private static MailPipeBuilder Add(IServiceCollection services, string name, IConfigurationSection? configuration, Action<MailPipeOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = new MailPipeBuilder(services, name);
        var options = services.AddOptions<MailPipeOptions>(name);
        if (configuration is not null)
        {
            var sections = MailPipeConfiguredSections.Of(services);
            sections.Add(configuration.Path);
            options.Configure(o => MailPipeConfiguration.Bind(configuration, o, sections));
        }

        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MailPipeOptions>, MailPipeOptionsValidator>());
        services.AddOptions<MailPipeSenderSetup>(name);
        services.AddSingleton<Hosting.IHostedService>(sp => new MailPipeStartupCheck(sp, name));

        if (builder.ServiceKey is { } key)
        {
            services.TryAddKeyedSingleton(key, (sp, _) => CreateSender(sp, key));
            services.TryAddKeyedSingleton(key, (sp, _) => Decorate(sp, key, sp.GetRequiredKeyedService<SmtpSender>(key)));
        }
        else
        {
            services.TryAddSingleton(sp => CreateSender(sp, name));
            services.TryAddSingleton(sp => Decorate(sp, name, sp.GetRequiredService<SmtpSender>()));
        }

        return builder;
    }

    /// <summary>The sender behind a builder's name (for the health check, which goes around decorators).</summary>
    internal static SmtpSender GetSender(IServiceProvider services, string name) =>
        name.Length == 0 ? services.GetRequiredService<SmtpSender>() : services.GetRequiredKeyedService<SmtpSender>(name);

    /// <exception cref="OptionsValidationException">A setting failed validation, or the sender refused one set with ConfigureSender; the failure names it.</exception>
    private static SmtpSender CreateSender(IServiceProvider services, string name)
    {
        // Get validates (OptionsValidationException): a sender is never made from settings that failed.
        var options = services.GetRequiredService<IOptionsMonitor<MailPipeOptions>>().Get(name);
        var sender = MailPipeConfiguration.ToSenderOptions(options);
        sender.Name = name.Length == 0 ? null : name;
        sender.LoggerFactory = services.GetService<ILoggerFactory>();
        sender.TimeProvider = services.GetService<TimeProvider>() ?? TimeProvider.System;
        sender.MeterFactory = services.GetService<IMeterFactory>();
        foreach (var action in services.GetRequiredService<IOptionsMonitor<MailPipeSenderSetup>>().Get(name).SenderActions)
        {
            action(services, sender);
        }

        SmtpSender created;
        try
        {
            created = new SmtpSender(sender);
        }
        catch (ArgumentException ex)
        {
            // The same failure at the first resolve (a ServiceProvider without a host) as at the host's start.
            throw MailPipeStartupCheck.Refused(name, ex);
        }

        if (sender.LoggerFactory is { } loggerFactory)
        {
            // The values the sender uses, named as they were set: the section's keys, or ConfigureSender's change of them.
            MailPipeSettingsLog.CheckPortAndTlsMode(
                loggerFactory.CreateLogger(MailPipeSettingsLog.Category),
                created.Name,
                sender.Port == options.Port ? $"{options.Source}Port" : "SmtpSenderOptions.Port (set with ConfigureSender)",
                sender.Port,
                sender.TlsMode == options.TlsMode ? $"{options.Source}TlsMode" : "SmtpSenderOptions.TlsMode (set with ConfigureSender)",
                sender.TlsMode);
        }

        return created;
    }

    private static ISmtpSender Decorate(IServiceProvider services, string name, SmtpSender sender)
    {
        ISmtpSender result = sender;
        foreach (var decorator in services.GetRequiredService<IOptionsMonitor<MailPipeSenderSetup>>().Get(name).Decorators)
        {
            result = decorator(services, result)
                ?? throw new InvalidOperationException($"A decorator added with AddSenderDecorator returned null for the MailPipe sender '{(name.Length == 0 ? sender.Name : name)}'; it must return the sender it wraps or a wrapper of it.");
        }

        return result;
    }
}
