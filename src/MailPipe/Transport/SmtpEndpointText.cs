namespace MailPipe.Transport;

/// <summary>How a server's host and port are written in messages, logs and the pool's name.</summary>
internal static class SmtpEndpointText
{
    /// <summary>
    /// <c>host:port</c>, with an IPv6 address in brackets (<c>[::1]:25</c>, RFC 3986 §3.2.2), so that the port cannot be
    /// read as the address's last group (<c>::1:25</c>).
    /// </summary>
    /// <param name="host">A host name or IP address, an IPv6 one with or without brackets.</param>
    /// <param name="port">The TCP port.</param>
    /// <returns>The text.</returns>
    public static string Format(string host, int port) =>
        host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[')
            ? $"[{host}]:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}"
            : $"{host}:{port.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}
