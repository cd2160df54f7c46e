using System.Net;
using System.Net.Sockets;

namespace MailPipe;

public sealed partial class AsyncSmtpSession
{
    /// <summary>
    /// The name this client gives in EHLO/HELO when the caller has none (RFC 5321 §4.1.1.1, §4.1.4): this machine's
    /// fully qualified domain name when it has one (a name with a dot that is not <c>localhost</c> or
    /// <c>localhost.*</c>), otherwise the address literal of the local end of this connection (§4.1.3):
    /// <c>[192.0.2.1]</c> or <c>[IPv6:2001:db8::1]</c>. A bare host name such as <c>vm</c> is never used: servers with
    /// <c>reject_non_fqdn_helo_hostname</c> and large providers refuse it.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the host name lookup (done once per process, at most 2 s).</param>
    /// <returns>The name; on a caller's stream that is not a socket and without a fully qualified name, <c>[127.0.0.1]</c>.</returns>
    /// <exception cref="InvalidOperationException">The session is not connected: the local address is only known after connect.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<string> GetDefaultClientDomainAsync(CancellationToken cancellationToken = default)
    {
        var connection = _connection ?? throw new InvalidOperationException("The default client domain is computed after connect: the session is not connected.");
        var localEndPoint = connection.LocalEndPoint;
        var fullyQualified = await ClientDomain.FullyQualifiedHostNameAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        return ClientDomain.Choose(fullyQualified, localEndPoint);
    }
}

/// <summary>Chooses the EHLO/HELO name: a fully qualified host name, else an address literal (RFC 5321 §4.1.3, §4.1.4).</summary>
internal static class ClientDomain
{
    private static readonly TimeSpan LookupLimit = TimeSpan.FromSeconds(2);
    private static Task<string?>? s_fullyQualifiedHostName;

    /// <summary>This machine's fully qualified name, looked up once per process (the host name, or its canonical name from the resolver: /etc/hosts, then DNS), or <see langword="null"/> when it has none within 2 s.</summary>
    /// <returns>The name, or <see langword="null"/>.</returns>
    public static Task<string?> FullyQualifiedHostNameAsync() =>
        LazyInitializer.EnsureInitialized(ref s_fullyQualifiedHostName, LookUpAsync);

    /// <summary>The name to give: <paramref name="fullyQualifiedName"/> when usable, else the literal of <paramref name="localEndPoint"/>.</summary>
    /// <param name="fullyQualifiedName">This machine's name, or <see langword="null"/>.</param>
    /// <param name="localEndPoint">The local end of the connection, or <see langword="null"/> when unknown.</param>
    /// <returns>The domain or address literal.</returns>
    public static string Choose(string? fullyQualifiedName, EndPoint? localEndPoint)
    {
        if (IsFullyQualified(fullyQualifiedName))
        {
            return fullyQualifiedName!.TrimEnd('.');
        }

        return localEndPoint is IPEndPoint { Address: var address } ? AddressLiteral(address) : "[127.0.0.1]";
    }

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

    /// <summary>The address literal of RFC 5321 §4.1.3: <c>[192.0.2.1]</c>, <c>[IPv6:2001:db8::1]</c>; an IPv4-mapped IPv6 address as IPv4.</summary>
    /// <param name="address">The address.</param>
    /// <returns>The literal.</returns>
    public static string AddressLiteral(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            // The scope (%eth0) is local to this machine and not part of the literal.
            var withoutScope = new IPAddress(address.GetAddressBytes());
            return $"[IPv6:{withoutScope}]";
        }

        return $"[{address}]";
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
