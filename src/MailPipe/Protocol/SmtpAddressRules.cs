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
