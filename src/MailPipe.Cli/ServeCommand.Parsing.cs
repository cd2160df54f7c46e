using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>The parsing of serve's option values (listen address, sizes) and the display of end points.</summary>
internal sealed partial class ServeCommand
{
    /// <summary>Parses a <c>--listen</c> value: <c>host:port</c>, <c>[IPv6]:port</c>, <c>:port</c>, <c>host</c>.</summary>
    /// <param name="text">The value (<see langword="null"/> for the default; an empty one is refused).</param>
    /// <param name="host">The host (127.0.0.1 when not given, as in <c>:port</c>), without brackets.</param>
    /// <param name="port">The port, 0 to 65535 (0: a free port); <see cref="DefaultPort"/> when not given.</param>
    /// <param name="error">Why the value is invalid.</param>
    /// <returns>Whether the value is valid.</returns>
    public static bool TryParseListen(string? text, out string host, out int port, out string? error)
    {
        host = "127.0.0.1";
        port = DefaultPort;
        error = null;
        var value = text?.Trim() ?? string.Empty;
        if (text is not null && value.Length == 0)
        {
            // --listen "$ADDRESS" with the variable unset: not a request for the default.
            error = "the address is empty; give host:port, [IPv6]:port or :port (127.0.0.1), port 0 for a free one";
            return false;
        }

        string? portText = null;
        if (value.StartsWith('['))
        {
            var close = value.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || !IPAddress.TryParse(value[1..close], out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{value}' is not [IPv6]:port";
                return false;
            }

            host = value[1..close];
            if (close + 1 < value.Length)
            {
                if (value[close + 1] != ':')
                {
                    error = $"'{value}' has text after ']' that is not ':port'";
                    return false;
                }

                portText = value[(close + 2)..];
            }
        }
        else
        {
            var colon = value.LastIndexOf(':');
            if (colon >= 0 && value.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                error = $"'{value}': write an IPv6 address in brackets, as [::1]:2525";
                return false;
            }

            var hostPart = colon >= 0 ? value[..colon] : value;
            portText = colon >= 0 ? value[(colon + 1)..] : null;
            if (hostPart.Length > 0)
            {
                if (hostPart.AsSpan().IndexOfAny(NotInHost) >= 0)
                {
                    error = $"'{hostPart}' is not a host name or address";
                    return false;
                }

                host = hostPart;
            }
        }

        if (portText is not null
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535))
        {
            error = $"the port '{portText}' is not a number from 0 to 65535";
            return false;
        }

        return true;
    }

    /// <summary>Parses a count option's value (<c>--max-recipients</c>, <c>--max-connections</c>; send's <c>--reconnect</c>, <c>--max-per-connection</c>); anything else is a usage error naming the option.</summary>
    internal static int ParseCount(ArgumentResult result, string option, int min, int max, string hint)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : null;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count >= min && count <= max)
        {
            return count;
        }

        result.AddError($"{option}: '{text}' is not accepted: {hint}");
        return 0;
    }

    /// <summary>Parses <c>--idle-timeout</c>: seconds, or a duration with a unit (<see cref="DurationArgument"/>); returns seconds.</summary>
    private static double ParseIdleTimeout(ArgumentResult result)
    {
        var text = result.Tokens.Count > 0 ? result.Tokens[0].Value : null;
        if (DurationArgument.TryParse(text, out var duration))
        {
            return duration.TotalSeconds;
        }

        result.AddError($"--idle-timeout: '{text}' is not a duration: give {DurationArgument.Forms}, above 0 and at most 1 day");
        return 0;
    }

    /// <summary>The largest <c>--max-size</c>: 2047 MiB, the most whole MiB an <see cref="int"/> (SmtpServer's limit) holds.</summary>
    public const long MaxSize = 2047L * 1024 * 1024;

    /// <summary>Parses a <c>--max-size</c> value: bytes, or a number with <c>K</c> (KiB) or <c>M</c> (MiB).</summary>
    /// <param name="text">The value.</param>
    /// <param name="bytes">The size in bytes, 1 to <see cref="MaxSize"/> (2047M), however it is written.</param>
    /// <returns>Whether the value is valid.</returns>
    public static bool TryParseSize(string? text, out int bytes)
    {
        bytes = 0;
        var value = text?.Trim() ?? string.Empty;
        long unit = 1;
        if (value.EndsWith('K') || value.EndsWith('k'))
        {
            unit = 1024;
            value = value[..^1];
        }
        else if (value.EndsWith('M') || value.EndsWith('m'))
        {
            unit = 1024 * 1024;
            value = value[..^1];
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number < 1 || number > MaxSize / unit)
        {
            return false;
        }

        bytes = (int)(number * unit);
        return true;
    }


    private static string Display(EndPoint? endPoint) => endPoint switch
    {
        IPEndPoint { AddressFamily: AddressFamily.InterNetworkV6 } ip => $"[{ip.Address}]:{ip.Port.ToString(CultureInfo.InvariantCulture)}",
        IPEndPoint ip => $"{ip.Address}:{ip.Port.ToString(CultureInfo.InvariantCulture)}",
        null => "?",
        _ => endPoint.ToString() ?? "?",
    };

    private static IPAddress? Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return literal;
        }

        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
        {
            return IPAddress.Loopback;
        }

        try
        {
            return Dns.GetHostAddresses(host).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).FirstOrDefault();
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
