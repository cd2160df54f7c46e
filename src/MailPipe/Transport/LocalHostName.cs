using System.Net;
using System.Net.Sockets;

namespace MailPipe.Transport;

/// <summary>
/// This machine's fully qualified domain name, for the EHLO/HELO name when the caller gives none (RFC 5321 §4.1.1.1):
/// the host name when it is fully qualified, else the resolver's canonical name for it (/etc/hosts, then DNS). A bare
/// host name such as <c>vm</c> never counts: servers with <c>reject_non_fqdn_helo_hostname</c> and large providers refuse it.
/// </summary>
internal static class LocalHostName
{
    private static readonly TimeSpan LookupLimit = TimeSpan.FromSeconds(2);
    private static Task<string?>? s_fullyQualified;

    /// <summary>The name, looked up once per process; <see langword="null"/> when the machine has none within 2 s.</summary>
    /// <returns>The name, or <see langword="null"/>.</returns>
    public static Task<string?> FullyQualifiedAsync() =>
        LazyInitializer.EnsureInitialized(ref s_fullyQualified, LookUpAsync);

    /// <summary>Whether a host name can stand for this machine in EHLO: it has a dot inside, is not <c>localhost</c> or <c>localhost.*</c>, and holds only letters, digits, '-' and '.'.</summary>
    /// <param name="name">The name.</param>
    /// <returns>Whether it is usable.</returns>
    public static bool IsFullyQualified(string? name)
    {
        var trimmed = name?.TrimEnd('.');
        if (string.IsNullOrEmpty(trimmed) || trimmed.Length > 253 || !trimmed.Contains('.', StringComparison.Ordinal)
            || trimmed.StartsWith("localhost", StringComparison.OrdinalIgnoreCase) || trimmed[0] == '.')
        {
            return false;
        }

        foreach (var c in trimmed)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.'))
            {
                return false;
            }
        }

        return !trimmed.Contains("..", StringComparison.Ordinal);
    }

    private static async Task<string?> LookUpAsync()
    {
        string hostName;
        try
        {
            hostName = Dns.GetHostName();
        }
        catch (SocketException)
        {
            return null;
        }

        if (IsFullyQualified(hostName))
        {
            return hostName;
        }

        try
        {
            using var limit = new CancellationTokenSource(LookupLimit);
            var entry = await Dns.GetHostEntryAsync(hostName, AddressFamily.Unspecified, limit.Token).ConfigureAwait(false);
            return IsFullyQualified(entry.HostName) ? entry.HostName : null;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ArgumentException)
        {
            return null;
        }
    }
}
