using System.Globalization;
using System.Net;
using Microsoft.Extensions.Configuration;

namespace MailPipe;

/// <summary>
/// Reads a configuration section into <see cref="MailPipeOptions"/>, key by key (no reflection binder: trimming and
/// AOT stay safe). A value that cannot be read, or a key MailPipe does not know (a typo such as
/// <c>Pool:MaxConnection</c>), becomes a message of <see cref="MailPipeOptions.BindingErrors"/>, reported at start-up
/// with the other validation failures.
/// </summary>
internal static class MailPipeConfiguration
{
    private static readonly string[] s_knownKeys =
    [
        "Host", "Port", "TlsMode", "UserName", "Password", "EhloName",
        "Tls:CaFile", "Tls:AcceptCertificateNameMismatch",
        "Pool:MaxConnections", "Pool:MaxMessagesPerConnection", "Pool:MaxNonMailCommandsPerConnection", "Pool:IdleTimeout", "Pool:MaxLifetime",
        "Timeouts:Connect", "Timeouts:Reply",
    ];

    private static readonly string[] s_subsections = ["Tls", "Pool", "Timeouts"];

    /// <summary>Reads <paramref name="section"/>; keys under <paramref name="otherSections"/> (the sections of the other senders registered, such as <c>Smtp:Bulk</c> inside <c>Smtp</c>) are theirs, not unknown keys of this one.</summary>
    public static void Bind(IConfigurationSection section, MailPipeOptions options, MailPipeConfiguredSections? otherSections = null)
    {
        var prefix = section.Path + ":";
        options.Source = prefix;
        options.Host = String(section, "Host") ?? options.Host;
        options.Port = Int(section, "Port", options) ?? options.Port;
        options.TlsMode = TlsMode(section, options) ?? options.TlsMode;
        options.UserName = String(section, "UserName") ?? options.UserName;
        options.Password = String(section, "Password") ?? options.Password;
        options.EhloName = String(section, "EhloName") ?? options.EhloName;
        options.Tls.CaFile = String(section, "Tls:CaFile") ?? options.Tls.CaFile;
        options.Tls.AcceptCertificateNameMismatch = Bool(section, "Tls:AcceptCertificateNameMismatch", options) ?? options.Tls.AcceptCertificateNameMismatch;
        options.Pool.MaxConnections = Int(section, "Pool:MaxConnections", options) ?? options.Pool.MaxConnections;
        options.Pool.MaxMessagesPerConnection = Int(section, "Pool:MaxMessagesPerConnection", options) ?? options.Pool.MaxMessagesPerConnection;
        options.Pool.MaxNonMailCommandsPerConnection = Int(section, "Pool:MaxNonMailCommandsPerConnection", options) ?? options.Pool.MaxNonMailCommandsPerConnection;
        options.Pool.IdleTimeout = Time(section, "Pool:IdleTimeout", options) ?? options.Pool.IdleTimeout;
        options.Pool.MaxLifetime = Time(section, "Pool:MaxLifetime", options) ?? options.Pool.MaxLifetime;
        options.Timeouts.Connect = Time(section, "Timeouts:Connect", options) ?? options.Timeouts.Connect;
        options.Timeouts.Reply = Time(section, "Timeouts:Reply", options) ?? options.Timeouts.Reply;

        // Unknown keys of a subsection that is not one of MailPipe's (Smtp:Bulk:Host): one message per subsection, saying how to register it.
        var unknownSubsections = new Dictionary<string, List<string>>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            // A section (Tls, Pool, Timeouts) may show up with an empty value; only keys with a value are checked.
            if (string.IsNullOrEmpty(value) || s_knownKeys.Contains(key, StringComparer.OrdinalIgnoreCase)
                || (otherSections is not null && otherSections.Owns(section.Path, key)))
            {
                continue;
            }

            var colon = key.IndexOf(':', StringComparison.Ordinal);
            var first = colon < 0 ? null : key[..colon];
            if (first is null || s_subsections.Contains(first, StringComparer.OrdinalIgnoreCase))
            {
                options.BindingErrors.Add($"{prefix}{key} is not a MailPipe setting. The settings are: {string.Join(", ", s_knownKeys)}.");
            }
            else if (unknownSubsections.TryGetValue(first, out var keys))
            {
                keys.Add(key[(colon + 1)..]);
            }
            else
            {
                unknownSubsections.Add(first, [key[(colon + 1)..]]);
            }
        }

        foreach (var (name, keys) in unknownSubsections)
        {
            keys.Sort(CompareByKnownOrder);
            options.BindingErrors.Add(
                $"{prefix}{name} (keys {string.Join(", ", keys)}) is not a MailPipe setting of {section.Path}, and no other MailPipe sender reads it. "
                + $"For a second sender, register it: services.AddKeyedMailPipe(\"{name}\", configuration.GetSection(\"{prefix}{name}\")); else remove it or fix its name.");
        }
    }

    private static int CompareByKnownOrder(string x, string y)
    {
        int Rank(string key)
        {
            var index = Array.FindIndex(s_knownKeys, k => string.Equals(k, key, StringComparison.OrdinalIgnoreCase));
            return index < 0 ? int.MaxValue : index;
        }

        var byRank = Rank(x).CompareTo(Rank(y));
        return byRank != 0 ? byRank : string.CompareOrdinal(x, y);
    }

    /// <summary>The core's settings from validated options.</summary>
    public static SmtpSenderOptions ToSenderOptions(MailPipeOptions options)
    {
        var sender = new SmtpSenderOptions
        {
            Host = options.Host!,
            Port = options.Port,
            TlsMode = options.TlsMode!.Value,
            EhloName = string.IsNullOrWhiteSpace(options.EhloName) ? null : options.EhloName,
            Credentials = options.UserName is null ? null : new NetworkCredential(options.UserName, options.Password),
            MaxConnections = options.Pool.MaxConnections,
            MaxMessagesPerConnection = options.Pool.MaxMessagesPerConnection,
            MaxNonMailCommandsPerConnection = options.Pool.MaxNonMailCommandsPerConnection,
            IdleTimeout = options.Pool.IdleTimeout,
            MaxLifetime = options.Pool.MaxLifetime,
            Timeouts = SmtpTimeouts.Interactive with
            {
                Connect = options.Timeouts.Connect,
                Reply = options.Timeouts.Reply,
                DataTermination = options.Timeouts.Reply == Timeout.InfiniteTimeSpan || options.Timeouts.Reply > SmtpTimeouts.Interactive.DataTermination
                    ? options.Timeouts.Reply
                    : SmtpTimeouts.Interactive.DataTermination,
            },
        };
        sender.Tls.AcceptCertificateNameMismatch = options.Tls.AcceptCertificateNameMismatch;
        if (!string.IsNullOrWhiteSpace(options.Tls.CaFile))
        {
            sender.Tls.AddTrustedRootCertificatesFromPemFile(options.Tls.CaFile);
        }

        return sender;
    }

    private static string? String(IConfigurationSection section, string key)
    {
        var value = section[key];
        return string.IsNullOrEmpty(value) ? null : value;
    }

    private static int? Int(IConfigurationSection section, string key, MailPipeOptions options)
    {
        var value = String(section, key);
        if (value is null)
        {
            return null;
        }

        if (int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number))
        {
            return number;
        }

        options.BindingErrors.Add($"{options.Source}{key} must be a whole number; '{value}' is not one.");
        return null;
    }

    private static bool? Bool(IConfigurationSection section, string key, MailPipeOptions options)
    {
        var value = String(section, key);
        if (value is null)
        {
            return null;
        }

        if (bool.TryParse(value, out var flag))
        {
            return flag;
        }

        options.BindingErrors.Add($"{options.Source}{key} must be true or false; '{value}' is neither.");
        return null;
    }

    private static TimeSpan? Time(IConfigurationSection section, string key, MailPipeOptions options)
    {
        var value = String(section, key);
        if (value is null)
        {
            return null;
        }

        // A bare number ("30") parses as days: a connect timeout of 30 days for someone who meant seconds. Only the documented forms, which have a ':'.
        var parsed = TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out var time);
        if (parsed && value.Contains(':', StringComparison.Ordinal))
        {
            return time;
        }

        options.BindingErrors.Add($"{options.Source}{key} must be a time span such as 00:00:30 (hh:mm:ss) or 1.00:00:00 (d.hh:mm:ss); '{value}' is not one{(parsed ? " (a bare number would be read as days)" : string.Empty)}.");
        return null;
    }

    private static SmtpTlsMode? TlsMode(IConfigurationSection section, MailPipeOptions options)
    {
        var value = String(section, "TlsMode");
        if (value is null)
        {
            return null;
        }

        // By name only: a number would silently pick a mode nobody reading the file can see.
        foreach (var mode in Enum.GetValues<SmtpTlsMode>())
        {
            if (string.Equals(value.Trim(), mode.ToString(), StringComparison.OrdinalIgnoreCase))
            {
                return mode;
            }
        }

        options.BindingErrors.Add($"{options.Source}TlsMode '{value}' is not a TLS mode. Use one of: {MailPipeOptionsValidator.TlsModeNames}.");
        return null;
    }
}

/// <summary>
/// The configuration sections that <c>AddMailPipe</c> / <c>AddKeyedMailPipe</c> calls of one service collection read
/// (and MailPipe.Resilience's <c>AddStandardResilience</c>), so that a section nested in a sender's (<c>Smtp:Bulk</c>
/// or <c>Smtp:Resilience</c> in <c>Smtp</c>) is not taken for unknown keys of it. One instance per service collection,
/// filled while services are registered and read when options are made.
/// </summary>
internal sealed class MailPipeConfiguredSections
{
    // Written while services are registered (one thread), only read once the container is built.
    private readonly HashSet<string> _paths = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The instance of <paramref name="services"/>, added on first use.</summary>
    public static MailPipeConfiguredSections Of(Microsoft.Extensions.DependencyInjection.IServiceCollection services)
    {
        if (services.FirstOrDefault(static d => d.ServiceType == typeof(MailPipeConfiguredSections) && !d.IsKeyedService)?.ImplementationInstance is MailPipeConfiguredSections sections)
        {
            return sections;
        }

        sections = new MailPipeConfiguredSections();
        Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(services, sections);
        return sections;
    }

    public void Add(string path) => _paths.Add(path);

    /// <summary>Whether <paramref name="relativeKey"/> of the section at <paramref name="sectionPath"/> lies in another registered section nested in it.</summary>
    public bool Owns(string sectionPath, string relativeKey)
    {
        var fullKey = sectionPath + ":" + relativeKey;
        foreach (var path in _paths)
        {
            // Only a section inside this one (Smtp:Bulk for Smtp), never the one around it (Smtp for Smtp:Bulk).
            if (path.StartsWith(sectionPath + ":", StringComparison.OrdinalIgnoreCase)
                && fullKey.StartsWith(path + ":", StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
