using System.Globalization;
using System.Text;

namespace MailPipe;

/// <summary>
/// Rules for mailboxes on the MAIL and RCPT lines: the 256-octet path limit (RFC 5321 §4.5.3.1.3) and the ASCII form
/// of an internationalised domain (the A-label, IDNA 2008 / UTS #46 via <see cref="IdnMapping"/>) for servers without
/// SMTPUTF8 (RFC 6531). Only a non-ASCII local part needs SMTPUTF8.
/// </summary>
internal static class SmtpAddressRules
{
    /// <summary>The longest reverse-path or forward-path, angle brackets included (RFC 5321 §4.5.3.1.3).</summary>
    public const int MaxPathOctets = 256;

    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = true };

    /// <summary>The path's length on the wire in octets: the mailbox in UTF-8 plus its two angle brackets.</summary>
    public static int PathOctets(ReadOnlySpan<char> mailbox) => Encoding.UTF8.GetByteCount(mailbox) + 2;

    /// <summary>Throws when the path would be longer than 256 octets (nothing is written).</summary>
    /// <exception cref="ArgumentException">The path is too long.</exception>
    public static void ValidatePathLength(ReadOnlySpan<char> mailbox, string parameterName)
    {
        var octets = PathOctets(mailbox);
        if (octets > MaxPathOctets)
        {
            throw new ArgumentException($"A path may be at most {MaxPathOctets} octets with its angle brackets (RFC 5321 §4.5.3.1.3); this one has {octets}.", parameterName);
        }
    }

    /// <summary>
    /// Checks the syntax of a mailbox (RFC 5321 §4.1.2, with RFC 6531's UTF-8): a local part (a dot-string of atext, or a
    /// quoted string), <c>@</c>, and a domain (letter-digit-hyphen labels, UTF-8 allowed) or an address literal in square
    /// brackets. Lenient where servers are: dots in a dot-string may lead, trail or repeat, and labels may hold
    /// <c>_</c>. A forward-path may be <c>Postmaster</c> alone (§4.1.1.3); the empty reverse-path is the null
    /// reverse-path. Source routes (§4.1.1.3: clients SHOULD NOT send them) are refused.
    /// </summary>
    /// <returns>Why the mailbox is not one, or <see langword="null"/> when it is.</returns>
    public static string? WhyNotMailbox(ReadOnlySpan<char> mailbox, bool forwardPath)
    {
        if (mailbox.IsEmpty)
        {
            return forwardPath ? "a forward-path must not be empty" : null;
        }

        if (HasLoneSurrogate(mailbox))
        {
            // UTF-8 has no form for it: the writer would put U+FFFD on the wire, another mailbox than the caller's.
            return "the mailbox holds an unpaired surrogate (U+D800–U+DFFF), which is not text and has no UTF-8 form (RFC 5321 §4.1.2, RFC 6531)";
        }

        if (mailbox[0] == '@')
        {
            return "a source route (@host,...:mailbox) is not sent (RFC 5321 §4.1.1.3, Appendix C)";
        }

        var at = LocalPartEnd(mailbox);
        if (at < 0)
        {
            return forwardPath && mailbox.Equals("Postmaster", StringComparison.OrdinalIgnoreCase)
                ? null
                : "a mailbox is local-part@domain (RFC 5321 §4.1.2); only the forward-path Postmaster may have no domain";
        }

        return WhyNotLocalPart(mailbox[..at]) ?? WhyNotDomain(mailbox[(at + 1)..]);
    }

    private static bool HasLoneSurrogate(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The index of the <c>@</c> that ends the local part (after a quoted string, the next character), or -1.</summary>
    private static int LocalPartEnd(ReadOnlySpan<char> mailbox)
    {
        if (mailbox[0] != '"')
        {
            return mailbox.IndexOf('@');
        }

        var quoted = QuotedPrefixLength(mailbox);
        return quoted > 0 && quoted < mailbox.Length && mailbox[quoted] == '@' ? quoted : -1;
    }

    /// <summary>The length of the quoted string that <paramref name="path"/> starts with, its quotes included (a quoted local part, where any printable character may stand: qtextSMTP, quoted-pairSMTP), or 0.</summary>
    internal static int QuotedPrefixLength(ReadOnlySpan<char> path)
    {
        if (path.IsEmpty || path[0] != '"')
        {
            return 0;
        }

        for (var i = 1; i < path.Length; i++)
        {
            if (path[i] == '\\')
            {
                i++;
            }
            else if (path[i] == '"')
            {
                return i + 1;
            }
        }

        return 0;
    }

    private static string? WhyNotLocalPart(ReadOnlySpan<char> local)
    {
        if (local.IsEmpty)
        {
            return "the local part before '@' is empty (RFC 5321 §4.1.2)";
        }

        if (local[0] == '"')
        {
            // Quoted-string: qtextSMTP (%d32-33 / %d35-91 / %d93-126, UTF-8 with RFC 6531) or quoted-pairSMTP (\ %d32-126).
            for (var i = 1; i < local.Length - 1; i++)
            {
                var c = local[i];
                if (c == '\\')
                {
                    i++;
                    c = local[i];
                }

                if (c < ' ' || c == '\x7f')
                {
                    return "the quoted local part holds a control character (RFC 5321 §4.1.2)";
                }
            }

            return null;
        }

        foreach (var c in local)
        {
            if (c < 0x80 && !char.IsAsciiLetterOrDigit(c) && c != '.' && "!#$%&'*+-/=?^_`{|}~".IndexOf(c) < 0)
            {
                return $"the local part holds '{Shown(c)}', which only a quoted local part may hold (RFC 5321 §4.1.2)";
            }
        }

        return null;
    }

    private static string? WhyNotDomain(ReadOnlySpan<char> domain)
    {
        if (domain.IsEmpty)
        {
            return "the domain after '@' is empty (RFC 5321 §4.1.2)";
        }

        if (domain[0] == '[')
        {
            // address-literal: dcontent is %d33-90 / %d94-126 (RFC 5321 §4.1.3).
            var inner = domain[^1] == ']' && domain.Length > 2 ? domain[1..^1] : default;
            foreach (var c in inner)
            {
                if (c is <= ' ' or '[' or '\\' or ']' or >= '\x7f')
                {
                    return "the address literal holds a character that it may not (RFC 5321 §4.1.3)";
                }
            }

            return inner.IsEmpty ? "an address literal is [address] (RFC 5321 §4.1.3)" : null;
        }

        var labelLength = 0;
        foreach (var c in domain)
        {
            if (c == '.')
            {
                if (labelLength == 0)
                {
                    return "the domain has an empty label (RFC 5321 §4.1.2)";
                }

                labelLength = 0;
                continue;
            }

            if (c < 0x80 && !char.IsAsciiLetterOrDigit(c) && c is not '-' and not '_')
            {
                return $"the domain holds '{Shown(c)}', which a domain name may not (RFC 5321 §4.1.2)";
            }

            labelLength++;
        }

        return labelLength == 0 ? "the domain has an empty label (RFC 5321 §4.1.2)" : null;
    }

    private static string Shown(char c) => c < ' ' || c == '\x7f' ? $"U+{(int)c:X4}" : c.ToString();

    /// <summary>
    /// The mailbox with its domain as an A-label (<c>user@bücher.example</c> → <c>user@xn--bcher-kva.example</c>); the
    /// same string when it is ASCII already; <see langword="null"/> when the local part is not ASCII or the domain has
    /// no valid A-label.
    /// </summary>
    public static string? ToAsciiMailbox(string mailbox)
    {
        if (Ascii.IsValid(mailbox))
        {
            return mailbox;
        }

        var at = mailbox.LastIndexOf('@');
        if (at <= 0 || !Ascii.IsValid(mailbox.AsSpan(0, at)))
        {
            return null;
        }

        var domain = mailbox[(at + 1)..];
        if (domain.Length == 0 || domain[0] == '[')
        {
            return null;
        }

        try
        {
            return string.Concat(mailbox.AsSpan(0, at + 1), Idn.GetAscii(domain));
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>The mailbox as it is written to a server: unchanged with SMTPUTF8, else with its domain as an A-label (the mailbox itself when it has none; <c>Prepare</c> refused that envelope already).</summary>
    public static string ForServer(string mailbox, bool smtpUtf8) => smtpUtf8 ? mailbox : ToAsciiMailbox(mailbox) ?? mailbox;

    /// <summary>
    /// A caller's path for a MAIL or RCPT command of its own (<see cref="AsyncSmtpSession.MailFromAsync"/>,
    /// <see cref="AsyncSmtpSession.RcptToAsync"/>): unchanged in a transaction that declared SMTPUTF8 or when ASCII,
    /// else with its domain as an A-label (RFC 6531 §3.4: without SMTPUTF8 a path is ASCII).
    /// </summary>
    /// <exception cref="ArgumentException">Without SMTPUTF8, the local part is not ASCII, the domain has no A-label, or the path with A-labels is over 256 octets (RFC 5321 §4.5.3.1.3).</exception>
    public static string PathForTransaction(string path, bool smtpUtf8, string parameterName)
    {
        var inner = SmtpCommandWriter.StripBrackets(path);
        if (smtpUtf8 || Ascii.IsValid(inner))
        {
            return path;
        }

        var mailbox = inner.ToString();
        if (ToAsciiMailbox(mailbox) is { } ascii)
        {
            // The A-labels are longer than the UTF-8 the caller's path was checked in: checked again here, before the operation.
            return PathOctets(ascii) <= MaxPathOctets ? ascii : throw new ArgumentException(
                $"'{mailbox}' is {PathOctets(ascii)} octets as A-labels, over the {MaxPathOctets} of a path (RFC 5321 §4.5.3.1.3): it needs SMTPUTF8 (RFC 6531 §3.4) to go as UTF-8; pass \"SMTPUTF8\" in the parameters of MailFromAsync (when the server offers it).",
                parameterName);
        }

        var at = mailbox.LastIndexOf('@');
        throw new ArgumentException(
            at > 0 && !Ascii.IsValid(mailbox.AsSpan(0, at))
                ? $"'{mailbox}' has a local part that is not ASCII: it needs SMTPUTF8 (RFC 6531 §3.4); pass \"SMTPUTF8\" in the parameters of MailFromAsync (when the server offers it), or send it with SendAsync, which declares it."
                : $"'{mailbox}' has a domain with no valid A-label (IDNA, RFC 5890): it needs SMTPUTF8 (RFC 6531 §3.4); pass \"SMTPUTF8\" in the parameters of MailFromAsync (when the server offers it).",
            parameterName);
    }

    /// <summary>Why the envelope cannot go to a server without SMTPUTF8 (a non-ASCII local part, a domain without A-label, an A-label path over 256 octets), or <see langword="null"/> when every address has an ASCII form.</summary>
    public static string? WhyNeedsSmtpUtf8(SmtpEnvelope envelope)
    {
        if (Check(envelope.ReversePath) is { } reverse)
        {
            return reverse;
        }

        for (var i = 0; i < envelope.Recipients.Count; i++)
        {
            if (Check(envelope.Recipients[i].Address) is { } forward)
            {
                return forward;
            }
        }

        return null;

        static string? Check(string mailbox)
        {
            if (Ascii.IsValid(mailbox))
            {
                return null;
            }

            var ascii = ToAsciiMailbox(mailbox);
            if (ascii is null)
            {
                var at = mailbox.LastIndexOf('@');
                return at > 0 && !Ascii.IsValid(mailbox.AsSpan(0, at))
                    ? "SMTPUTF8 (RFC 6531), needed for a mailbox whose local part is not ASCII"
                    : "SMTPUTF8 (RFC 6531), needed for a domain that has no valid A-label (IDNA, RFC 5890)";
            }

            return PathOctets(ascii) > MaxPathOctets
                ? $"SMTPUTF8 (RFC 6531), needed because the A-label form of a path is longer than {MaxPathOctets} octets"
                : null;
        }
    }
}
