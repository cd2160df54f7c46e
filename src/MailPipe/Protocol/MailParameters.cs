using System.Text;

namespace MailPipe.Protocol;

/// <summary>Wire formatting of MAIL and RCPT parameters (RFC 3461 DSN parameters with xtext); the decisions about which to send stay with the sender.</summary>
internal static class MailParameters
{
    /// <summary>The NOTIFY keywords in the order they are written (RFC 3461 §4.1); one array, not one per recipient.</summary>
    private static readonly (DsnNotify Flag, string Word)[] NotifyWords = [(DsnNotify.Success, "SUCCESS"), (DsnNotify.Failure, "FAILURE"), (DsnNotify.Delay, "DELAY")];

    /// <summary>
    /// The RCPT parameters of one recipient as they go on the line, without the leading space: NOTIFY and ORCPT (xtext,
    /// RFC 3461 §4.1–4.2) when the server offers DSN, then the recipient's own parameters; <see langword="null"/> for none.
    /// </summary>
    /// <param name="recipient">The recipient.</param>
    /// <param name="dsn">Whether the server offers DSN.</param>
    /// <returns>The parameter text, or <see langword="null"/>.</returns>
    public static string? ForRecipient(SmtpRecipient recipient, bool dsn)
    {
        if ((!dsn || (recipient.Notify == DsnNotify.Default && string.IsNullOrEmpty(recipient.OriginalRecipient)))
            && string.IsNullOrWhiteSpace(recipient.Parameters))
        {
            return null;
        }

        var parameters = new StringBuilder();
        if (dsn && recipient.Notify != DsnNotify.Default)
        {
            parameters.Append(" NOTIFY=");
            if (recipient.Notify.HasFlag(DsnNotify.Never))
            {
                parameters.Append("NEVER");
            }
            else
            {
                var first = true;
                foreach (var (flag, word) in NotifyWords)
                {
                    if (recipient.Notify.HasFlag(flag))
                    {
                        parameters.Append(first ? string.Empty : ",").Append(word);
                        first = false;
                    }
                }
            }
        }

        if (dsn && recipient.OriginalRecipient is { Length: > 0 } original)
        {
            parameters.Append(" ORCPT=rfc822;").Append(Xtext.Encode(original));
        }

        if (!string.IsNullOrWhiteSpace(recipient.Parameters))
        {
            parameters.Append(' ').Append(recipient.Parameters.Trim());
        }

        return parameters.Length == 0 ? null : parameters.ToString(1, parameters.Length - 1);
    }
}
