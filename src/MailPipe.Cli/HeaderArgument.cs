using System.Text;

namespace MailPipe.Cli;

/// <summary>One <c>--header "Name: value"</c> field (RFC 5322 §2.2: a name of printable ASCII without ':', a value without line breaks).</summary>
/// <param name="Name">The field name.</param>
/// <param name="Value">The value, leading and trailing white space removed.</param>
internal sealed record HeaderArgument(string Name, string Value)
{
    /// <summary>
    /// Whether a command-line value was not valid UTF-8: .NET decodes the command line as UTF-8, and a byte that is not
    /// became U+FFFD (which would go out silently in its place). <c>--header</c>, <c>--subject</c> and <c>--body</c> refuse it.
    /// </summary>
    /// <param name="text">The value as .NET decoded it.</param>
    /// <returns>Whether it holds U+FFFD.</returns>
    public static bool IsNotUtf8(string text) => text.Contains('\uFFFD', StringComparison.Ordinal);

    /// <summary>The usage error for a value that is not valid UTF-8 (<see cref="IsNotUtf8"/>), after the value or its name.</summary>
    /// <param name="what">What to give in UTF-8: field, subject, text.</param>
    /// <returns>The problem.</returns>
    public static string NotUtf8Problem(string what) =>
        $"is not valid UTF-8 (a byte that is not shows as \uFFFD: a terminal or script in another encoding, such as Latin-1?); give the {what} in UTF-8";

    /// <summary>Parses a value of <c>--header</c>.</summary>
    /// <param name="text">The text, <c>Name: value</c>.</param>
    /// <param name="header">The field.</param>
    /// <param name="problem">Why it is not one, otherwise <see langword="null"/>.</param>
    /// <returns>Whether the text is a field.</returns>
    public static bool TryParse(string text, out HeaderArgument? header, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(text);
        header = null;
        problem = null;
        if (text.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            problem = "holds a line break (CR or LF) or NUL; give one field per --header";
            return false;
        }

        if (IsNotUtf8(text))
        {
            // A To given so, a recipient, would reach a mailbox nobody wrote.
            problem = NotUtf8Problem("field");
            return false;
        }

        var colon = text.IndexOf(':', StringComparison.Ordinal);
        var name = colon > 0 ? text[..colon].TrimEnd(' ', '\t') : string.Empty;
        if (name.Length == 0 || name.Any(c => c is < '!' or > '~'))
        {
            problem = "is not \"Name: value\" (a field name of printable ASCII without spaces, then a colon)";
            return false;
        }

        if (name.Equals("Bcc", StringComparison.OrdinalIgnoreCase) || name.Equals("Resent-Bcc", StringComparison.OrdinalIgnoreCase))
        {
            // Written into the message, it would show the blind copy to every recipient and reach nobody.
            problem = "is a blind copy, which --header would show to every recipient without sending it to anyone; give a blind-copy recipient with --to (never written in the message)";
            return false;
        }

        header = new HeaderArgument(name, text[(colon + 1)..].Trim(' ', '\t'));
        return true;
    }

    /// <summary>
    /// The field as a header line, <c>Name: value</c> and CRLF: an ASCII value as given; a value with non-ASCII text
    /// formatted by MimeKit as a built message's field is (RFC 2047 encoded words, display names of an address field
    /// included; folded), so that it needs neither 8BITMIME nor SMTPUTF8 (a non-ASCII local part stays UTF-8).
    /// </summary>
    /// <returns>The bytes.</returns>
    public byte[] ToLine()
    {
        if (Ascii.IsValid(Value))
        {
            return Encoding.UTF8.GetBytes($"{Name}: {Value}\r\n");
        }

        var field = new MimeKit.Header(Encoding.UTF8, Name, Value);
        var raw = field.RawValue; // the folded value after the colon, ending in a line end
        var crlf = Encoding.UTF8.GetString(raw).ReplaceLineEndings("\r\n");
        return [.. Encoding.ASCII.GetBytes(Name + ":"), .. Encoding.UTF8.GetBytes(crlf)];
    }
}
