using System.Globalization;
using System.Text;
using MimeKit;

namespace MailPipe.Cli;

/// <summary>The envelope read from a message's header fields, as <c>sendmail -t</c> reads it.</summary>
/// <param name="ReversePath">The sender's address, or <see langword="null"/> when no usable sender field exists.</param>
/// <param name="Recipients">The recipients' addresses, each once, in header order.</param>
/// <param name="UsedResentFields">Whether the <c>Resent-*</c> fields were used (the message is being re-sent, RFC 5322 §3.6.6).</param>
internal sealed record HeaderEnvelope(string? ReversePath, IReadOnlyList<string> Recipients, bool UsedResentFields);

/// <summary>
/// Reads the envelope from the header fields of a message and removes the blind-copy fields, as <c>sendmail -t</c>
/// does. Address lists are parsed by MimeKit (folded lines, display names, groups, comments, quoted strings, encoded words).
/// </summary>
/// <remarks>
/// <para>Recipients: every mailbox of <c>To</c>, <c>Cc</c> and <c>Bcc</c> (every occurrence of each); but when the
/// message carries <c>Resent-To</c>, <c>Resent-Cc</c>, <c>Resent-Bcc</c>, <c>Resent-From</c> or <c>Resent-Sender</c> it is being re-sent and only the first three count,
/// of the newest block of <c>Resent-*</c> fields (the topmost) when it was re-sent more than once, so that the
/// recipients of an earlier resending do not get it again (RFC 5322 §3.6.6).</para>
/// <para>Sender: <c>Sender</c> when present (the mailbox responsible for the transmission, RFC 5322 §3.6.2), else the
/// first mailbox of <c>From</c>; for a re-sent message <c>Resent-Sender</c>, else <c>Resent-From</c>, of that block.</para>
/// </remarks>
internal static class EnvelopeFromHeaders
{
    private static readonly string[] NormalRecipientFields = ["To", "Cc", "Bcc"];
    private static readonly string[] ResentRecipientFields = ["Resent-To", "Resent-Cc", "Resent-Bcc"];
    private static readonly string[] ResentSenderFields = ["Resent-From", "Resent-Sender"];
    private static readonly string[] ResentEveryBlockFields = ["Resent-From", "Resent-Date"];
    private static readonly IdnMapping Idn = new();

    /// <summary>Reads the envelope from the header fields.</summary>
    /// <param name="headers">The header section.</param>
    /// <returns>The envelope (the sender may be missing, the recipient list may be empty: the caller decides).</returns>
    /// <exception cref="FormatException">An address field cannot be parsed.</exception>
    public static HeaderEnvelope Extract(HeaderSection headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        // Resent-From or Resent-Sender alone also says that the message is being resent: its original recipients had
        // it already, so without resent recipients it has none (the caller asks for --to), as MailPipe.MimeKit reads it.
        var resent = headers.Fields.Any(f => IsAny(f, ResentRecipientFields) || IsAny(f, ResentSenderFields));
        var recipientFields = resent ? ResentRecipientFields : NormalRecipientFields;
        var fields = resent ? NewestResentBlock(headers.Fields) : headers.Fields;

        var recipients = new List<string>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in fields)
        {
            if (!IsAny(field, recipientFields))
            {
                continue;
            }

            var written = WrittenValue(headers, field);
            foreach (var mailbox in ParseList(headers, field).Mailboxes)
            {
                var address = MailboxArgument.AsWritten(mailbox, written);
                if (!string.IsNullOrEmpty(address) && seen.Add(SameMailboxKey(address)))
                {
                    recipients.Add(address);
                }
            }
        }

        var reversePath = resent
            ? FirstMailbox(headers, fields, "Resent-Sender") ?? FirstMailbox(headers, fields, "Resent-From")
            : FirstMailbox(headers, fields, "Sender") ?? FirstMailbox(headers, fields, "From");
        return new HeaderEnvelope(reversePath, recipients, resent);
    }

    /// <summary>
    /// What two ways of writing one mailbox have in common: a domain written once in Unicode and once as its A-label
    /// (RFC 5890), a local part written once quoted and once not (<c>"bob"@</c> and <c>bob@</c>, RFC 5321 §4.1.2). Compared
    /// ignoring case, as before. Each is one recipient: as two RCPTs the server stores two copies.
    /// </summary>
    internal static string SameMailboxKey(string address)
    {
        var at = address.LastIndexOf('@');
        if (at < 0)
        {
            return address;
        }

        var domain = address[(at + 1)..];
        if (domain.AsSpan().ContainsAnyExceptInRange('\0', '\u007F'))
        {
            try
            {
                domain = Idn.GetAscii(domain);
            }
            catch (ArgumentException)
            {
                // Not an IDN: compared as written.
            }
        }

        var local = address.AsSpan(0, at);
        if (local.Length < 2 || local[0] != '"' || local[^1] != '"')
        {
            return string.Concat(local, "@", domain);
        }

        var unquoted = new StringBuilder(local.Length);
        for (var i = 1; i < local.Length - 1; i++)
        {
            unquoted.Append(local[i] == '\\' && i + 1 < local.Length - 1 ? local[++i] : local[i]);
        }

        return unquoted.Append('@').Append(domain).ToString();
    }

    /// <summary>Whether a field is a blind-copy field, whose presence must not reach the recipients (<c>Bcc</c>, <c>Resent-Bcc</c>).</summary>
    /// <param name="field">A header field.</param>
    /// <returns>Whether to remove it before sending.</returns>
    public static bool IsBlindCopy(RawHeaderField field) =>
        field.Name.Equals("Bcc", StringComparison.OrdinalIgnoreCase) || field.Name.Equals("Resent-Bcc", StringComparison.OrdinalIgnoreCase);

    /// <summary>The header section without its <c>Bcc</c> and <c>Resent-Bcc</c> fields; every other byte unchanged.</summary>
    /// <param name="headers">The header section.</param>
    /// <returns>The bytes to send in place of the header section.</returns>
    public static byte[] RemoveBlindCopies(HeaderSection headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        return headers.Without(IsBlindCopy);
    }

    private static bool IsAny(RawHeaderField field, string[] names) =>
        Array.Exists(names, n => n.Equals(field.Name, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The fields of the newest block of <c>Resent-*</c> fields when the message holds more than one (<c>Resent-From</c>
    /// or <c>Resent-Date</c>, which every block has, appears twice; RFC 5322 allows each field once per block): from the
    /// first <c>Resent-*</c> field to the first field that is not one (blocks sit under the trace fields of their hops),
    /// or to a <c>Resent-*</c> field the block already has. Otherwise every field.
    /// </summary>
    private static IReadOnlyList<RawHeaderField> NewestResentBlock(IReadOnlyList<RawHeaderField> fields)
    {
        var repeated = ResentEveryBlockFields.Any(name => fields.Count(f => f.Name.Equals(name, StringComparison.OrdinalIgnoreCase)) > 1);
        if (!repeated)
        {
            return fields;
        }

        var block = new List<RawHeaderField>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in fields)
        {
            var isResent = field.Name.StartsWith("Resent-", StringComparison.OrdinalIgnoreCase);
            if (block.Count == 0 && !isResent)
            {
                continue;
            }

            if (!isResent || !names.Add(field.Name))
            {
                break;
            }

            block.Add(field);
        }

        return block;
    }

    private static string? FirstMailbox(HeaderSection headers, IReadOnlyList<RawHeaderField> fields, string name)
    {
        foreach (var field in fields)
        {
            if (field.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            {
                var mailbox = ParseList(headers, field).Mailboxes.FirstOrDefault(m => !string.IsNullOrEmpty(m.Address));
                if (mailbox is not null)
                {
                    return MailboxArgument.AsWritten(mailbox, WrittenValue(headers, field));
                }
            }
        }

        return null;
    }

    /// <summary>The field's value as text, for <see cref="MailboxArgument.AsWritten"/> (which looks for ASCII in it).</summary>
    private static string WrittenValue(HeaderSection headers, RawHeaderField field) => System.Text.Encoding.UTF8.GetString(headers.UnfoldedValue(field));

    private static InternetAddressList ParseList(HeaderSection headers, RawHeaderField field)
    {
        var value = headers.UnfoldedValue(field);
        if (value.AsSpan().Trim(" \t"u8).IsEmpty)
        {
            return [];
        }

        return InternetAddressList.TryParse(ParserOptions.Default, value, 0, value.Length, out var list)
            ? list
            : throw new FormatException($"the {field.Name} header field cannot be parsed as an address list");
    }
}
