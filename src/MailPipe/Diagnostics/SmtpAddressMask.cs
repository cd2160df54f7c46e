namespace MailPipe.Diagnostics;

/// <summary>
/// Masks the local part of every mail address in a text (<c>550 5.1.1 &lt;x@example.com&gt;</c> becomes
/// <c>550 5.1.1 &lt;***@example.com&gt;</c>), as the transcript shows server lines unless
/// <see cref="SmtpSessionOptions.LogAddresses"/> is set; also for MailPipe.Resilience's log entries of results.
/// </summary>
internal static class SmtpAddressMask
{
    /// <summary>The text with the local part of every address in it replaced by <c>***</c> (a quoted one too).</summary>
    /// <param name="text">A server line, or any text that may quote one.</param>
    /// <returns>The masked text; <paramref name="text"/> itself when it holds no address.</returns>
    public static string InText(string text)
    {
        if (!text.Contains('@', StringComparison.Ordinal))
        {
            return text;
        }

        var masked = new System.Text.StringBuilder(text.Length);
        var copied = 0;
        for (var at = text.IndexOf('@', StringComparison.Ordinal); at > 0; at = text.IndexOf('@', at + 1))
        {
            // The local part: a quoted string, or the run of characters back to a delimiter.
            var start = at;
            if (text[at - 1] == '"' && text.LastIndexOf('"', at - 2 < 0 ? 0 : at - 2) is var quote and >= 0 && quote < at - 1)
            {
                start = quote;
            }
            else
            {
                while (start > copied && " <>\"(),;:[]\t".IndexOf(text[start - 1], StringComparison.Ordinal) < 0)
                {
                    start--;
                }
            }

            if (start < at && start >= copied)
            {
                masked.Append(text, copied, start - copied).Append("***");
                copied = at;
            }
        }

        return copied == 0 ? text : masked.Append(text, copied, text.Length - copied).ToString();
    }
}
