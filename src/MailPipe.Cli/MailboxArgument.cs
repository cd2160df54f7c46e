using System.Net;

namespace MailPipe.Cli;

/// <summary>
/// One address option value (<c>--from</c>, <c>--to</c>): exactly one RFC 5321 mailbox (§4.1.2: a dot-string or
/// quoted local part, <c>@</c>, a domain or an address literal; UTF-8 as RFC 6531 allows), written bare, in angle
/// brackets, or after a display name (<c>Jane Doe &lt;jane@example.test&gt;</c>). Never a list: a comma, a second
/// address or a line break is an error, so that a value can never add a recipient. A recipient may also be the reserved
/// mailbox <c>Postmaster</c> without a domain, in any case (RFC 5321 §4.1.1.3, §4.5.1), as MailPipe's envelope takes it.
/// </summary>
internal static class MailboxArgument
{
    private const int MaxLocalPartOctets = 64;

    private static readonly System.Buffers.SearchValues<char> NameSpecials = System.Buffers.SearchValues.Create("<>,;");

    private static readonly System.Buffers.SearchValues<char> ListSeparators = System.Buffers.SearchValues.Create(" ,;<>@");
    private const int MaxDomainOctets = 255;

    /// <summary>The atext specials of RFC 5321 §4.1.2 (RFC 5322 §3.2.3) besides letters and digits.</summary>
    private const string AtextSpecials = "!#$%&'*+-/=?^_`{|}~";

    /// <summary>
    /// The address of a mailbox MimeKit parsed from <paramref name="written"/>, its domain in the form written there.
    /// MimeKit decodes an IDNA A-label domain (<c>xn--bcher-kva.example</c>) to Unicode in
    /// <see cref="MimeKit.MailboxAddress.Address"/>: an address written all in ASCII would need SMTPUTF8 (RFC 6531) and
    /// reach the server as an address the user never wrote. A domain written in Unicode stays Unicode.
    /// </summary>
    /// <param name="mailbox">The parsed mailbox.</param>
    /// <param name="written">The text it was parsed from (an option's value, a header field's value).</param>
    /// <returns>The address for the envelope.</returns>
    public static string AsWritten(MimeKit.MailboxAddress mailbox, string written)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        ArgumentNullException.ThrowIfNull(written);
        var address = mailbox.Address;
        if (System.Text.Ascii.IsValid(address))
        {
            return address;
        }

        var encoded = mailbox.GetAddress(idnEncode: true);
        var at = encoded.LastIndexOf('@');
        return at > 0 && !encoded.Equals(address, StringComparison.Ordinal) && written.AsSpan().Contains(encoded.AsSpan(at), StringComparison.OrdinalIgnoreCase)
            ? encoded
            : address;
    }

    /// <summary>Parses a value.</summary>
    /// <param name="value">The option's value.</param>
    /// <param name="allowNullPath">Whether <c>&lt;&gt;</c> or an empty value (the null reverse-path) is allowed.</param>
    /// <param name="address">The mailbox (empty for the null reverse-path).</param>
    /// <param name="displayName">The display name, when one was given.</param>
    /// <param name="problem">Why the value is not one mailbox, otherwise <see langword="null"/>.</param>
    /// <param name="forwardPath">Whether the value is a recipient, which may be <c>Postmaster</c> alone (any case).</param>
    /// <returns>Whether the value is one mailbox.</returns>
    public static bool TryParse(string value, bool allowNullPath, out string address, out string? displayName, out string? problem, bool forwardPath = false)
    {
        ArgumentNullException.ThrowIfNull(value);
        address = string.Empty;
        displayName = null;
        problem = null;
        if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            problem = "holds a line break (CR or LF) or NUL; give one address per option";
            return false;
        }

        if (value.Contains('\uFFFD', StringComparison.Ordinal))
        {
            // .NET decodes the command line as UTF-8: a byte that is not (a Latin-1 'ü' from a terminal in another
            // encoding) becomes U+FFFD, and the mail would go to a mailbox nobody wrote.
            problem = "is not valid UTF-8 (a byte that is not shows as \uFFFD: a terminal or script in another encoding, such as Latin-1?); give the address in UTF-8";
            return false;
        }

        var text = value.Trim(' ', '\t');
        if (text.Length == 0 || text == "<>")
        {
            if (allowNullPath)
            {
                return true;
            }

            problem = "is empty; give an address";
            return false;
        }

        var mailbox = text;
        if (text[^1] == '>')
        {
            var open = FindOpeningBracket(text);
            if (open < 0)
            {
                problem = "has a '>' without its '<'";
                return false;
            }

            var name = text[..open].Trim(' ', '\t');
            if (name.Length > 0)
            {
                var quoted = name.Length >= 2 && name[0] == '"' && name[^1] == '"';
                if (name.AsSpan().IndexOfAny(NameSpecials) >= 0 && !quoted)
                {
                    problem = "is not one address (the display name holds <, >, a comma or a semicolon)";
                    return false;
                }

                displayName = quoted ? name[1..^1] : name;
            }

            mailbox = text[(open + 1)..^1];
            if (mailbox.Length == 0)
            {
                if (allowNullPath && displayName is null)
                {
                    return true;
                }

                problem = "has no address inside <>";
                return false;
            }
        }

        if (!(forwardPath && IsPostmaster(mailbox)) && !IsMailbox(mailbox, out problem))
        {
            return false;
        }

        address = mailbox;
        return true;
    }

    /// <summary>
    /// Whether <paramref name="mailbox"/> is the reserved <c>Postmaster</c> without a domain, which every SMTP server
    /// must take as a recipient, in any case (RFC 5321 §4.5.1); never a sender.
    /// </summary>
    /// <param name="mailbox">The text, without angle brackets.</param>
    /// <returns>Whether it is that mailbox.</returns>
    public static bool IsPostmaster(string mailbox) => mailbox.Equals("Postmaster", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether <paramref name="mailbox"/> is an RFC 5321 Mailbox (§4.1.2), UTF-8 allowed (RFC 6531 §3.3).</summary>
    /// <param name="mailbox">The text, without angle brackets.</param>
    /// <param name="problem">What is wrong, otherwise <see langword="null"/>.</param>
    /// <returns>Whether it is one.</returns>
    public static bool IsMailbox(string mailbox, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        problem = null;
        int at;
        if (mailbox.StartsWith('"'))
        {
            var end = EndOfQuotedString(mailbox);
            if (end < 0)
            {
                problem = "has a quoted local part that is not closed or holds a character SMTP does not allow";
                return false;
            }

            at = end + 1;
            if (at >= mailbox.Length || mailbox[at] != '@')
            {
                problem = "is not one address: the quoted local part must be followed by @domain";
                return false;
            }
        }
        else
        {
            at = mailbox.LastIndexOf('@');
            if (at <= 0)
            {
                problem = "is not an address (local-part@domain)";
                return false;
            }

            if (!IsDotString(mailbox.AsSpan(0, at)))
            {
                problem = mailbox.AsSpan(0, at).IndexOfAny(ListSeparators) >= 0
                    ? "is not one address (several addresses or spaces: give one address per option)"
                    : "has a local part that is not a dot-string (quote it: \"john smith\"@example.test)";
                return false;
            }
        }

        if (System.Text.Encoding.UTF8.GetByteCount(mailbox.AsSpan(0, at)) > MaxLocalPartOctets + (mailbox[0] == '"' ? 2 : 0))
        {
            problem = $"has a local part longer than {MaxLocalPartOctets} octets (RFC 5321 §4.5.3.1.1)";
            return false;
        }

        var domain = mailbox[(at + 1)..];
        if (!IsDomainOrLiteral(domain))
        {
            problem = domain.AsSpan().IndexOfAny(ListSeparators) >= 0
                ? "is not one address (several addresses or spaces: give one address per option)"
                : $"has '{domain}', which is not a domain or an address literal such as [192.0.2.1]";
            return false;
        }

        return true;
    }

    private static int FindOpeningBracket(string text)
    {
        var inQuotes = false;
        var open = -1;
        for (var i = 0; i < text.Length - 1; i++)
        {
            var c = text[i];
            if (c == '\\' && inQuotes)
            {
                i++;
            }
            else if (c == '"')
            {
                inQuotes = !inQuotes;
            }
            else if (c == '<' && !inQuotes)
            {
                open = i;
            }
        }

        return open;
    }

    /// <summary>The index of the closing quote of the Quoted-string at the start, or -1 (RFC 5321 qtextSMTP, quoted-pairSMTP).</summary>
    private static int EndOfQuotedString(string text)
    {
        for (var i = 1; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\\')
            {
                if (i + 1 >= text.Length || text[i + 1] < 32 || text[i + 1] == 127)
                {
                    return -1;
                }

                i++;
            }
            else if (c == '"')
            {
                return i;
            }
            else if (c < 32 || c == 127)
            {
                return -1;
            }
        }

        return -1;
    }

    private static bool IsDotString(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || text[0] == '.' || text[^1] == '.')
        {
            return false;
        }

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '.')
            {
                if (text[i - 1] == '.')
                {
                    return false;
                }
            }
            else if (!(char.IsAsciiLetterOrDigit(c) || AtextSpecials.Contains(c) || c > 127 && !char.IsControl(c) && !char.IsWhiteSpace(c)))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsDomainOrLiteral(string domain)
    {
        if (domain.Length == 0 || System.Text.Encoding.UTF8.GetByteCount(domain) > MaxDomainOctets)
        {
            return false;
        }

        if (domain[0] == '[')
        {
            if (domain[^1] != ']')
            {
                return false;
            }

            var literal = domain[1..^1];
            if (literal.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase))
            {
                return IPAddress.TryParse(literal[5..], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
            }

            return IPAddress.TryParse(literal, out var v4) && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && literal.Count(c => c == '.') == 3;
        }

        foreach (var label in domain.Split('.'))
        {
            if (label.Length == 0 || label.Length > 63 || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }

            foreach (var c in label)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c > 127 && char.IsLetterOrDigit(c)))
                {
                    return false;
                }
            }
        }

        return true;
    }
}
