using System.Text;

namespace MailPipe.Authentication;

/// <summary>
/// A reduced SASLprep (RFC 4013, stringprep RFC 3454 profile) for SCRAM user names and passwords (RFC 5802 §2.2):
/// non-ASCII spaces (table C.1.2) become U+0020, "commonly mapped to nothing" characters (table B.1) are removed, the
/// result is NFKC-normalised, and control characters, private-use code points, non-characters, surrogates and the
/// other prohibited tables (C.2-C.9) are refused. The bidirectional check (RFC 3454 §6) is not done.
/// Plain printable ASCII, by far the common case, is returned unchanged.
/// </summary>
internal static class SaslPrep
{
    /// <summary>Prepares <paramref name="value"/>.</summary>
    /// <param name="value">The string as the user typed it.</param>
    /// <param name="parameterName">The parameter, for the exception.</param>
    /// <param name="allowEmpty">Whether an empty result is allowed (a password may be empty, a user name not).</param>
    /// <param name="secret">Whether the value is a secret: the exception then does not name the prohibited character.</param>
    /// <returns>The prepared string.</returns>
    /// <exception cref="ArgumentException">A prohibited character, or an empty result where not allowed.</exception>
    public static string Prepare(string value, string parameterName, bool allowEmpty = false, bool secret = false)
    {
        ArgumentNullException.ThrowIfNull(value, parameterName);
        if (IsPrintableAscii(value))
        {
            return value.Length == 0 && !allowEmpty ? throw Empty(parameterName) : value;
        }

        var mapped = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (IsNonAsciiSpace(c))
            {
                mapped.Append(' ');
            }
            else if (!IsMappedToNothing(c))
            {
                mapped.Append(c);
            }
        }

        string normalized;
        try
        {
            normalized = mapped.ToString().Normalize(NormalizationForm.FormKC);
        }
        catch (ArgumentException ex)
        {
            throw new ArgumentException("The value holds an unpaired surrogate, which SASLprep prohibits (RFC 4013 §2.3).", parameterName, ex);
        }

        for (var i = 0; i < normalized.Length; i++)
        {
            int codePoint = normalized[i];
            if (char.IsHighSurrogate(normalized[i]) && i + 1 < normalized.Length && char.IsLowSurrogate(normalized[i + 1]))
            {
                codePoint = char.ConvertToUtf32(normalized[i], normalized[i + 1]);
                i++;
            }

            if (IsProhibited(codePoint))
            {
                throw new ArgumentException(
                    secret ? "The password holds a character that SASLprep prohibits (RFC 4013 §2.3)." : $"The value holds U+{codePoint:X4}, which SASLprep prohibits (RFC 4013 §2.3).",
                    parameterName);
            }
        }

        return normalized.Length == 0 && !allowEmpty ? throw Empty(parameterName) : normalized;
    }

    private static ArgumentException Empty(string parameterName) => new("The value is empty after SASLprep (RFC 4013).", parameterName);

    private static bool IsPrintableAscii(string value)
    {
        foreach (var c in value)
        {
            if (c is < ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>RFC 3454 table C.1.2.</summary>
    private static bool IsNonAsciiSpace(char c) =>
        c is '\u00A0' or '\u1680' or (>= '\u2000' and <= '\u200B') or '\u202F' or '\u205F' or '\u3000';

    /// <summary>RFC 3454 table B.1, less U+200B, which is also in C.1.2 and is mapped to a space here.</summary>
    private static bool IsMappedToNothing(char c) =>
        c is '\u00AD' or '\u034F' or '\u1806' or (>= '\u180B' and <= '\u180D') or (>= '\u200C' and <= '\u200D') or '\u2060'
            or (>= '\uFE00' and <= '\uFE0F') or '\uFEFF';

    /// <summary>RFC 3454 tables C.2.1-C.9 as RFC 4013 §2.3 lists them (and unpaired surrogates).</summary>
    private static bool IsProhibited(int c) =>
        (c & 0xFFFE) == 0xFFFE // C.4 non-characters U+xFFFE, U+xFFFF
        || c is < 0x20 or 0x7F or (>= 0x80 and <= 0x9F) // C.2.1, C.2.2 controls
            or 0x06DD or 0x070F or 0x180E or (>= 0x200C and <= 0x200D) or (>= 0x2028 and <= 0x2029) or (>= 0x2060 and <= 0x2063)
            or (>= 0x206A and <= 0x206F) or 0xFEFF or (>= 0xFFF9 and <= 0xFFFC) or (>= 0x1D173 and <= 0x1D17A) // C.2.2
            or (>= 0xE000 and <= 0xF8FF) or (>= 0xF0000 and <= 0xFFFFD) or (>= 0x100000 and <= 0x10FFFD) // C.3 private use
            or (>= 0xFDD0 and <= 0xFDEF) // C.4 non-characters
            or (>= 0xD800 and <= 0xDFFF) // C.5 surrogates (unpaired)
            or 0xFFFD or (>= 0x2FF0 and <= 0x2FFB) // C.6, C.7
            or 0x0340 or 0x0341 or 0x200E or 0x200F or (>= 0x202A and <= 0x202E) // C.8
            or 0xE0001 or (>= 0xE0020 and <= 0xE007F); // C.9
}
