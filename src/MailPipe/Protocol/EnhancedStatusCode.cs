using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace MailPipe;

/// <summary>
/// An enhanced mail system status code, <c>class.subject.detail</c> (RFC 3463 §2), such as <c>5.1.1</c>.
/// </summary>
/// <remarks>
/// <para><see cref="Class"/> is 2 (success), 4 (persistent transient failure) or 5 (permanent failure);
/// <see cref="Subject"/> and <see cref="Detail"/> are 0 to 999.</para>
/// <para>MailPipe parses one from the first line of a reply wherever it is well formed and its class equals the first
/// digit of the reply code, whether or not the server advertised <c>ENHANCEDSTATUSCODES</c> (RFC 2034).</para>
/// </remarks>
public readonly record struct EnhancedStatusCode
{
    /// <summary>Creates a code from its three parts.</summary>
    /// <param name="class">2, 4 or 5.</param>
    /// <param name="subject">0 to 999.</param>
    /// <param name="detail">0 to 999.</param>
    /// <exception cref="ArgumentOutOfRangeException">A part is out of its range.</exception>
    public EnhancedStatusCode(int @class, int subject, int detail)
    {
        if (@class is not (2 or 4 or 5))
        {
            throw new ArgumentOutOfRangeException(nameof(@class), @class, "The class of an enhanced status code is 2, 4 or 5 (RFC 3463 §3.1).");
        }

        ArgumentOutOfRangeException.ThrowIfNegative(subject);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(subject, 999);
        ArgumentOutOfRangeException.ThrowIfNegative(detail);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(detail, 999);
        Class = @class;
        Subject = subject;
        Detail = detail;
    }

    /// <summary>The class: 2 success, 4 persistent transient failure, 5 permanent failure (RFC 3463 §3.1).</summary>
    public int Class { get; }

    /// <summary>The subject, 0 to 999: 1 addressing, 2 mailbox, 3 mail system, 4 network, 5 protocol, 6 content, 7 security (RFC 3463 §3.2).</summary>
    public int Subject { get; }

    /// <summary>The detail, 0 to 999 (RFC 3463 §3.3 onwards).</summary>
    public int Detail { get; }

    /// <summary>Parses the exact text <c>class.subject.detail</c> (RFC 3463 §2: class one digit 2, 4 or 5; subject and detail 1 to 3 digits).</summary>
    /// <param name="text">The text, with nothing before or after the code.</param>
    /// <param name="code">The code when the text is well formed.</param>
    /// <returns><see langword="true"/> when the text is a well-formed enhanced status code.</returns>
    public static bool TryParse(ReadOnlySpan<char> text, out EnhancedStatusCode code)
    {
        code = default;
        if (text.Length < 5 || text[1] != '.' || text[0] is not ('2' or '4' or '5'))
        {
            return false;
        }

        var rest = text[2..];
        var dot = rest.IndexOf('.');
        if (dot is < 1 or > 3)
        {
            return false;
        }

        if (!TryParsePart(rest[..dot], out var subject) || !TryParsePart(rest[(dot + 1)..], out var detail))
        {
            return false;
        }

        code = new EnhancedStatusCode(text[0] - '0', subject, detail);
        return true;
    }

    /// <summary>Parses the exact text <c>class.subject.detail</c>.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The code.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException"><paramref name="text"/> is not a well-formed enhanced status code.</exception>
    public static EnhancedStatusCode Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var code) ? code : throw new FormatException($"'{text}' is not an enhanced status code (RFC 3463 §2: class.subject.detail).");
    }

    /// <summary>Reads a code at the start of <paramref name="text"/> that is followed by a space or the end of the text.</summary>
    /// <returns>The length of the code in characters, or 0 when there is none.</returns>
    internal static int TryParsePrefix(ReadOnlySpan<char> text, [NotNullWhen(true)] out EnhancedStatusCode? code)
    {
        code = null;
        var end = text.IndexOf(' ');
        var candidate = end < 0 ? text : text[..end];
        if (candidate.Length > 9 || !TryParse(candidate, out var parsed))
        {
            return 0;
        }

        code = parsed;
        return candidate.Length;
    }

    private static bool TryParsePart(ReadOnlySpan<char> part, out int value)
    {
        value = 0;
        if (part.Length is < 1 or > 3)
        {
            return false;
        }

        foreach (var c in part)
        {
            if (!char.IsAsciiDigit(c))
            {
                return false;
            }

            value = (value * 10) + (c - '0');
        }

        return true;
    }

    /// <summary>The code as <c>class.subject.detail</c>, for example <c>5.1.1</c>.</summary>
    /// <returns>The text form.</returns>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Class}.{Subject}.{Detail}");
}
