using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MailPipe;

/// <summary>
/// The argument of EHLO and HELO (RFC 5321 §4.1.1.1, §4.1.3): a domain, or an address literal in brackets. A bare IP
/// address is not valid syntax there, so it is written as its address literal: <c>127.0.0.1</c> → <c>[127.0.0.1]</c>,
/// <c>::1</c> → <c>[IPv6:::1]</c>, an IPv4-mapped IPv6 address → its IPv4 literal.
/// </summary>
internal static class SmtpHelloName
{
    /// <summary>IDNA for a name with U-labels: EHLO comes before the client knows whether the server takes SMTPUTF8, so such a name goes as its A-labels (RFC 6531 §3.7.1, RFC 5890).</summary>
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    /// <summary>The argument as it goes on the EHLO/HELO line; the same string when it is already an ASCII domain or a literal in RFC 5321 form; a domain with U-labels as its A-labels.</summary>
    /// <param name="domain">A checked domain (no CR, LF, NUL or white space).</param>
    /// <returns>The domain, or the address literal of a bare or bracketed IP address.</returns>
    public static string ToArgument(string domain)
    {
        var inner = domain;
        var bracketed = domain.Length > 2 && domain[0] == '[' && domain[^1] == ']';
        if (bracketed)
        {
            inner = domain[1..^1];
            if (inner.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
            {
                return domain;
            }
        }

        return TryParseAddress(inner, out var address) ? AddressLiteral(address)
            : bracketed || System.Text.Ascii.IsValid(domain) ? domain : Idn.GetAscii(domain);
    }

    /// <summary>Checks a caller's EHLO/HELO name before anything is written.</summary>
    /// <param name="domain">The domain or address literal.</param>
    /// <exception cref="ArgumentException">It is empty, holds CR, LF, NUL or white space, has a non-ASCII label with no A-label form, or is longer than 255 octets (as A-labels).</exception>
    public static void Validate(string domain)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(domain);
        SmtpCommandWriter.ValidateArgument(domain, nameof(domain));
        if (domain.AsSpan().IndexOfAny(' ', '\t') >= 0)
        {
            throw new ArgumentException("A domain for EHLO/HELO must not contain white space.", nameof(domain));
        }

        if (!System.Text.Ascii.IsValid(domain) && domain[0] != '[')
        {
            try
            {
                domain = Idn.GetAscii(domain);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"'{domain}' is not a domain for EHLO/HELO: its non-ASCII labels have no A-label form (IDNA, RFC 5890).", nameof(domain), ex);
            }
        }

        if (System.Text.Encoding.UTF8.GetByteCount(domain) > 255)
        {
            // Else the whole line was sent, and the server's 500 came back as a refused session.
            throw new ArgumentException("A domain for EHLO/HELO is at most 255 octets (RFC 5321 §4.5.3.1.2).", nameof(domain));
        }
    }

    /// <summary>The name this client gives when the caller has none (RFC 5321 §4.1.4): this machine's fully qualified name, else the address literal of the local end of the connection (§4.1.3).</summary>
    /// <param name="fullyQualifiedName">This machine's fully qualified name (see <c>Transport.LocalHostName</c>), or <see langword="null"/>.</param>
    /// <param name="localEndPoint">The local end of the connection, or <see langword="null"/> when unknown (a caller's stream).</param>
    /// <returns>The name without a trailing dot, the literal of the local address, or <c>[127.0.0.1]</c>.</returns>
    public static string ForClient(string? fullyQualifiedName, EndPoint? localEndPoint) =>
        fullyQualifiedName is not null ? fullyQualifiedName.TrimEnd('.')
        : localEndPoint is IPEndPoint { Address: var address } ? AddressLiteral(address) : "[127.0.0.1]";

    /// <summary>The address literal of RFC 5321 §4.1.3: <c>[192.0.2.1]</c>, <c>[IPv6:2001:db8::1]</c>; an IPv4-mapped IPv6 address as IPv4; an IPv6 scope (<c>%eth0</c>, local to this machine) left out.</summary>
    /// <param name="address">The address.</param>
    /// <returns>The literal.</returns>
    public static string AddressLiteral(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.AddressFamily == AddressFamily.InterNetworkV6
            ? string.Concat("[IPv6:", new IPAddress(address.GetAddressBytes()).ToString(), "]")
            : string.Concat("[", address.ToString(), "]");
    }

    /// <summary>Only the full textual forms: four dotted decimal parts, or an IPv6 address (with a colon); never a bare number.</summary>
    private static bool TryParseAddress(string text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return IPAddress.TryParse(text, out address!) && address.AddressFamily == AddressFamily.InterNetworkV6;
        }

        var parts = text.Split('.');
        if (parts.Length != 4)
        {
            return false;
        }

        foreach (var part in parts)
        {
            if (part.Length is 0 or > 3 || !byte.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out _))
            {
                return false;
            }
        }

        return IPAddress.TryParse(text, out address!);
    }
}

/// <summary>What the greeting must be for a session to go on (RFC 5321 §3.1, §4.2): only 220 means "ready".</summary>
internal static class SmtpGreetingRules
{
    /// <summary>
    /// The error for a positive greeting that is not 220 (a <c>221</c> "closing" banner, a stray 250): the server is
    /// not ready, and its text is kept. <see langword="null"/> for 220 and for negative greetings (which are returned as data).
    /// </summary>
    /// <param name="greeting">The greeting.</param>
    /// <returns>The exception to throw, or <see langword="null"/>.</returns>
    public static SmtpException? NotReady(SmtpReply greeting)
    {
        if (greeting.Code == 220 || !greeting.IsPositiveCompletion)
        {
            return null;
        }

        return new SmtpException(
            SmtpErrorCode.ServiceNotAvailable,
            $"The server is not ready: its greeting is {greeting.Code}, not 220 (RFC 5321 §3.1); nothing was sent and the connection was closed. The server said: {greeting}")
        {
            IsTransient = true,
            Reply = greeting,
        };
    }
}
