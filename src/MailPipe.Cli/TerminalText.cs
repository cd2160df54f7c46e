using System.Text;

namespace MailPipe.Cli;

/// <summary>
/// Makes server-supplied text safe to print on a terminal: a hostile server must not be able to send escape
/// sequences (cursor moves, colour, hyperlinks, title changes) through reply text into the user's terminal.
/// </summary>
internal static class TerminalText
{
    /// <summary>Replaces C0 and C1 control characters (except line feed and tab) and DEL with '?'.</summary>
    /// <param name="text">Text that may come from a server.</param>
    /// <returns>The text with every control character other than LF and TAB replaced.</returns>
    public static string Sanitize(string text)
    {
        if (!text.AsSpan().ContainsAnyInRange('\0', '\u001F') && !text.AsSpan().ContainsAnyInRange('\u007F', '\u009F'))
        {
            return text;
        }

        var builder = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            builder.Append(c is '\n' or '\t' || !(char.IsControl(c)) ? c : '?');
        }

        return builder.ToString();
    }
}
