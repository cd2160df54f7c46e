using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MailPipe.Cli;

/// <summary>A <c>--server</c> value: <c>host</c>, <c>host:port</c>, <c>[IPv6]</c> or <c>[IPv6]:port</c>; the port defaults to 25.</summary>
/// <param name="Host">The host name or address literal, without brackets.</param>
/// <param name="Port">The TCP port, 1 to 65535.</param>
internal sealed record ServerAddress(string Host, int Port)
{
    /// <summary>The SMTP port used when none is given.</summary>
    public const int DefaultPort = 25;

    private static readonly SearchValues<char> NotInHost = SearchValues.Create(" \t\r\n\0/");

    /// <summary>Parses a <c>--server</c> value.</summary>
    /// <param name="text">The value.</param>
    /// <param name="address">The address when valid.</param>
    /// <param name="error">Why the value is invalid, otherwise <see langword="null"/>.</param>
    /// <returns>Whether the value is valid.</returns>
    public static bool TryParse(string? text, [NotNullWhen(true)] out ServerAddress? address, [NotNullWhen(false)] out string? error)
    {
        address = null;
        error = null;
        var value = text?.Trim() ?? string.Empty;
        if (value.Length == 0)
        {
            error = "the server is empty; expected host[:port]";
            return false;
        }

        string host;
        string? portText = null;
        if (value[0] == '[')
        {
            var close = value.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{value}' has '[' without ']'; expected [IPv6]:port";
                return false;
            }

            host = value[1..close];
            var rest = value[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':')
                {
                    error = $"'{value}' has text after ']' that is not ':port'";
                    return false;
                }

                portText = rest[1..];
            }

            if (!IPAddress.TryParse(host, out var literal) || literal.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{host}' in brackets is not an IPv6 address";
                return false;
            }
        }
        else
        {
            var colon = value.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0 && value.IndexOf(':', colon + 1) >= 0)
            {
                // Several colons and no brackets: a bare IPv6 literal, which cannot carry a port.
                if (!IPAddress.TryParse(value, out var literal) || literal.AddressFamily != AddressFamily.InterNetworkV6)
                {
                    error = $"'{value}' is neither host[:port] nor an IPv6 address; write IPv6 with a port as [::1]:2525";
                    return false;
                }

                // "::1:2525" is an address of its own (port 25), but reads as [::1]:2525 as well: say both, send nothing.
                var last = value.LastIndexOf(':');
                if (last > 0 && value[last - 1] != ':' && int.TryParse(value.AsSpan(last + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var maybePort)
                    && maybePort is >= 1 and <= 65535 && IPAddress.TryParse(value.AsSpan(0, last), out var before) && before.AddressFamily == AddressFamily.InterNetworkV6)
                {
                    error = $"'{value}' is ambiguous: write [{value[..last]}]:{value[(last + 1)..]} for that port, or [{value}] for that address on port {DefaultPort.ToString(CultureInfo.InvariantCulture)}";
                    return false;
                }

                host = value;
            }
            else if (colon >= 0)
            {
                host = value[..colon];
                portText = value[(colon + 1)..];
            }
            else
            {
                host = value;
            }
        }

        if (host.Length == 0 || host.AsSpan().IndexOfAny(NotInHost) >= 0)
        {
            error = $"'{value}' has no valid host";
            return false;
        }

        var port = DefaultPort;
        if (portText is not null
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"the port '{portText}' is not a number from 1 to 65535";
            return false;
        }

        address = new ServerAddress(host, port);
        return true;
    }

    /// <summary>The address as typed back to a person: <c>host:port</c>, with brackets around IPv6.</summary>
    /// <returns>The display form.</returns>
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port.ToString(CultureInfo.InvariantCulture)}" : $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";
}
