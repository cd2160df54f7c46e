using System.Text;

namespace MailPipe.Cli;

/// <summary>
/// Makes server-supplied text safe to print on a terminal: a hostile server must not be able to send escape
/// sequences (cursor moves, colour, hyperlinks, title changes) through reply text into the user's terminal, nor
/// Unicode's bidirectional controls, which reorder what is shown (an address or reply that reads other than it is).
/// </summary>
internal static class TerminalText
{
    /// <summary>
    /// The bidirectional formatting characters (Unicode UAX #9: the marks ALM, LRM, RLM, the embeddings and overrides
    /// LRE to RLO with PDF, the isolates LRI to PDI): a reply or a received address carrying U+202E (RIGHT-TO-LEFT
    /// OVERRIDE) would show its text reversed.
    /// </summary>
    private static readonly System.Buffers.SearchValues<char> Bidi = System.Buffers.SearchValues.Create("\u061C\u200E\u200F\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069");

    /// <summary>Replaces C0 and C1 control characters (except line feed and tab), DEL and the bidirectional formatting characters with '?'.</summary>
    /// <param name="text">Text that may come from a server.</param>
    /// <returns>The text with every control character other than LF and TAB, and every bidirectional control, replaced.</returns>
    public static string Sanitize(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\0', '\u001F') && !text.AsSpan().ContainsAnyInRange('\u007F', '\u009F') && !text.AsSpan().ContainsAny(Bidi))
        {
            return text;
        }

        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            builder.Append(c is '\n' or '\t' || !(char.IsControl(c) || Bidi.Contains(c)) ? c : '?');
        }

        return builder.ToString();
    }
}
