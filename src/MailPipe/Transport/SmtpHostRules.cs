using System.Net;

namespace MailPipe.Transport;

/// <summary>What a host to connect to may be: a host name, an IPv4 literal or an IPv6 literal (bracketed or not), alone.</summary>
internal static class SmtpHostRules
{
    /// <summary>
    /// Checks <paramref name="host"/> before anything is connected: a host with a port or a scheme in it, a space or a
    /// control character would otherwise be looked up as a name and fail as a (transient) <see cref="SmtpErrorCode.HostNotFound"/>
    /// on every attempt, or reach the wire.
    /// </summary>
    /// <param name="host">The host.</param>
    /// <param name="parameterName">The name the exception gives (the caller's parameter or property).</param>
    /// <param name="portName">Where the port goes instead (a parameter or property), named in the message.</param>
    /// <exception cref="ArgumentException">The host is empty, holds a space or a control character, a port or a scheme.</exception>
    public static void Validate(string host, string parameterName, string portName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host, parameterName);
        if (host.AsSpan().IndexOfAny("\r\n\0\t ") >= 0)
        {
            throw new ArgumentException($"Host '{host}' holds a space or a control character; give only the host name or IP address.", parameterName);
        }

        if (host.Contains('/', StringComparison.Ordinal)
            || (host.Contains(':', StringComparison.Ordinal) && !IPAddress.TryParse(host.Trim('[', ']'), out _)))
        {
            throw new ArgumentException($"Host '{host}' is not a host name or IP address: give the name alone, such as smtp.example.com, and the port in {portName}.", parameterName);
        }
    }
}
