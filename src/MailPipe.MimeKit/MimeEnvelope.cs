using System.Globalization;
using MimeKit;

namespace MailPipe;

/// <summary>The envelope of a <see cref="MimeMessage"/> from its headers, and its domains in A-label form.</summary>
internal static class MimeEnvelope
{
    private static readonly IdnMapping Idn = new();

    /// <summary>
    /// Reverse path: <c>Resent-Sender</c>, else the first <c>Resent-From</c> (when the message was resent), else
    /// <c>Sender</c>, else the first <c>From</c>. Recipients: <c>Resent-To</c>, <c>Resent-Cc</c> and <c>Resent-Bcc</c>
    /// when the message was resent (of the newest block of Resent-* fields when it was resent more than once), else
    /// <c>To</c>, <c>Cc</c> and <c>Bcc</c>; groups flattened, each address once.
    /// </summary>
    /// <exception cref="ArgumentException">No sender address, or no recipient.</exception>
    public static SmtpEnvelope Create(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);

        // Index loops over the address lists rather than their Mailboxes iterators: this runs once per message sent.
        // Resent-To, Resent-Cc or Resent-Bcc alone also say that the message is being resent (as sendmail -t and the
        // CLI read them): without a Resent-From it has no reverse path (ArgumentException), rather than going to its
        // original recipients, who had it already, again.
        var resent = message.ResentSender is not null || message.ResentFrom.Count > 0
            || message.ResentTo.Count > 0 || message.ResentCc.Count > 0 || message.ResentBcc.Count > 0;

        // A message resent more than once holds one block of Resent-* fields per resending, the newest on top (RFC 5322
        // §3.6.6); MimeKit's lists join every block, so the older blocks' recipients would get the message again.
        var block = resent ? NewestResentBlock(message.Headers) : null;
        var senderField = block is not null ? HeaderId.ResentSender : resent ? HeaderId.ResentSender : HeaderId.Sender;
        var sender = block is not null ? FirstMailbox(ResentList(block, HeaderId.ResentSender)) : resent ? message.ResentSender : message.Sender;
        if (sender is null)
        {
            senderField = resent ? HeaderId.ResentFrom : HeaderId.From;
            sender = block is not null ? FirstMailbox(ResentList(block, HeaderId.ResentFrom)) : resent ? FirstMailbox(message.ResentFrom) : FirstMailbox(message.From);
        }

        if (sender is null || string.IsNullOrEmpty(sender.Address))
        {
            throw new ArgumentException(
                Unreadable(message, block, resent ? [HeaderId.ResentSender, HeaderId.ResentFrom] : [HeaderId.Sender, HeaderId.From]) is { } field
                    ? $"The message has {(resent ? "no Resent-Sender or Resent-From" : "no Sender or From")} address that could be read, so there is no reverse path: {field}"
                    : resent ? "The message has Resent-* fields but neither Resent-Sender nor a Resent-From address: there is no reverse path." : "The message has neither a Sender nor a From address: there is no reverse path.",
                nameof(message));
        }

        var recipients = new List<SmtpRecipient>();
        AddRecipients(recipients, block is not null ? ResentList(block, HeaderId.ResentTo) : resent ? message.ResentTo : message.To, Fields(message, block, resent ? HeaderId.ResentTo : HeaderId.To));
        AddRecipients(recipients, block is not null ? ResentList(block, HeaderId.ResentCc) : resent ? message.ResentCc : message.Cc, Fields(message, block, resent ? HeaderId.ResentCc : HeaderId.Cc));
        AddRecipients(recipients, block is not null ? ResentList(block, HeaderId.ResentBcc) : resent ? message.ResentBcc : message.Bcc, Fields(message, block, resent ? HeaderId.ResentBcc : HeaderId.Bcc));
        if (recipients.Count == 0)
        {
            throw new ArgumentException(
                Unreadable(message, block, resent ? [HeaderId.ResentTo, HeaderId.ResentCc, HeaderId.ResentBcc] : [HeaderId.To, HeaderId.Cc, HeaderId.Bcc]) is { } field
                    ? $"The message has no {(resent ? "Resent-To, Resent-Cc or Resent-Bcc" : "To, Cc or Bcc")} address that could be read: {field}"
                    : resent ? "The message was resent but has no Resent-To, Resent-Cc or Resent-Bcc address." : "The message has no To, Cc or Bcc address.",
                nameof(message));
        }

        return new SmtpEnvelope(AsWritten(sender, Fields(message, block, senderField)), recipients);
    }

    /// <summary>
    /// For a missing address: the first of the fields <paramref name="ids"/> that is there with a value MimeKit read no
    /// address from (<c>To: bob@</c>), quoted, so that the error does not call a field missing that the user can see;
    /// <see langword="null"/> when there is none.
    /// </summary>
    private static string? Unreadable(MimeMessage message, List<Header>? block, HeaderId[] ids)
    {
        foreach (var id in ids)
        {
            foreach (var field in Fields(message, block, id))
            {
                var value = field.Value.Trim();
                if (value.Length > 0)
                {
                    return $"the field {field.Field}: '{(value.Length > 100 ? value[..100] + "..." : value)}' holds none (a mailbox is local-part@domain, RFC 5322 §3.4).";
                }
            }
        }

        return null;
    }

    /// <summary>The fields named <paramref name="id"/> that the addresses came from: of the newest resent block, else of the whole header.</summary>
    private static List<Header> Fields(MimeMessage message, List<Header>? block, HeaderId id)
    {
        var fields = new List<Header>();
        foreach (var header in block ?? (IEnumerable<Header>)message.Headers)
        {
            if (header.Id == id)
            {
                fields.Add(header);
            }
        }

        return fields;
    }

    /// <summary>
    /// The address of <paramref name="mailbox"/> with its domain in the form the field was written in. MimeKit decodes
    /// an A-label domain (<c>xn--bcher-kva.example</c>) to Unicode in <see cref="MailboxAddress.Address"/>: an address
    /// written all in ASCII went as one nobody wrote, which needs SMTPUTF8 (RFC 6531) on a server that offers it and
    /// makes the message one a relay without SMTPUTF8 must refuse. A parsed field (<see cref="Header.Offset"/> set,
    /// unchanged since) holds the text as written; a field built or changed in code holds what MimeKit wrote (A-labels
    /// always), so the form written there is lost and the address goes as MimeKit gives it.
    /// </summary>
    private static string AsWritten(MailboxAddress mailbox, List<Header> fields)
    {
        var address = mailbox.Address;
        var at = address.LastIndexOf('@');
        if (at < 0 || IsAscii(address.AsSpan(at + 1)) || fields.Count == 0)
        {
            return address;
        }

        string mailboxInALabels;
        try
        {
            mailboxInALabels = string.Concat(address.AsSpan(0, at + 1), Idn.GetAscii(address[(at + 1)..]));
        }
        catch (ArgumentException)
        {
            return address;
        }

        foreach (var field in fields)
        {
            if (field.Offset is null)
            {
                continue;
            }

            var raw = System.Text.Encoding.UTF8.GetString(field.RawValue);
            for (var i = raw.IndexOf(mailboxInALabels, StringComparison.OrdinalIgnoreCase); i >= 0; i = raw.IndexOf(mailboxInALabels, i + 1, StringComparison.OrdinalIgnoreCase))
            {
                // The whole mailbox, not the end of a longer local part or the start of a longer domain.
                var end = i + mailboxInALabels.Length;
                if ((end == raw.Length || !IsAddressChar(raw[end])) && (i == 0 || !IsAddressChar(raw[i - 1])))
                {
                    return string.Concat(address.AsSpan(0, at), raw.AsSpan(i + at, mailboxInALabels.Length - at));
                }
            }
        }

        return address;
    }

    /// <summary>
    /// The newest block of Resent-* fields when the message holds more than one (Resent-From or Resent-Date, which
    /// every block has, appears twice; RFC 5322 allows each field once per block): from the first Resent-* field to the first field that is not one (blocks arrive
    /// under the trace fields of their hops), or to a Resent-* field the block already has. <see langword="null"/> when
    /// there is one block: MimeKit's lists are that block (fields added in code are appended, apart from each other).
    /// Two blocks written next to each other, the older one with a field the newer lacks before one it repeats, cannot
    /// be told apart by their fields: that field is taken into the newer block.
    /// </summary>
    private static List<Header>? NewestResentBlock(HeaderList headers)
    {
        var seen = new HashSet<HeaderId>();
        var repeated = false;
        for (var i = 0; i < headers.Count && !repeated; i++)
        {
            // Resent-From and Resent-Date are in every block (RFC 5322 §3.6.6): either one twice means two blocks.
            repeated = headers[i].Id is HeaderId.ResentFrom or HeaderId.ResentDate && !seen.Add(headers[i].Id);
        }

        if (!repeated)
        {
            return null;
        }

        List<Header>? block = null;
        for (var i = 0; i < headers.Count; i++)
        {
            var header = headers[i];
            if (!IsResentField(header.Id))
            {
                if (block is not null)
                {
                    break;
                }
            }
            else if (block is null)
            {
                block = [header];
            }
            else if (block.Exists(h => h.Id == header.Id))
            {
                break;
            }
            else
            {
                block.Add(header);
            }
        }

        return block;
    }

    private static bool IsResentField(HeaderId id) => id is HeaderId.ResentDate or HeaderId.ResentFrom or HeaderId.ResentSender or HeaderId.ResentTo
        or HeaderId.ResentCc or HeaderId.ResentBcc or HeaderId.ResentMessageId or HeaderId.ResentReplyTo;

    /// <summary>The addresses of the block's fields named <paramref name="id"/> (an unparsable field gives none).</summary>
    private static InternetAddressList ResentList(List<Header> block, HeaderId id)
    {
        var list = new InternetAddressList();
        foreach (var header in block)
        {
            if (header.Id == id && InternetAddressList.TryParse(ParserOptions.Default, header.RawValue, out var parsed))
            {
                list.AddRange(parsed);
            }
        }

        return list;
    }

    private static MailboxAddress? FirstMailbox(InternetAddressList list)
    {
        for (var i = 0; i < list.Count; i++)
        {
            switch (list[i])
            {
                case MailboxAddress mailbox:
                    return mailbox;
                case GroupAddress { Members: var members } when FirstMailbox(members) is { } member:
                    return member;
            }
        }

        return null;
    }

    /// <summary>Adds each mailbox of <paramref name="list"/> (groups flattened) whose address is not there yet (compared without case).</summary>
    private static void AddRecipients(List<SmtpRecipient> recipients, InternetAddressList list, List<Header> fields)
    {
        for (var i = 0; i < list.Count; i++)
        {
            switch (list[i])
            {
                case MailboxAddress { Address.Length: > 0 } mailbox when AsWritten(mailbox, fields) is var address && !Contains(recipients, address):
                    recipients.Add(new SmtpRecipient(address));
                    break;
                case GroupAddress group:
                    AddRecipients(recipients, group.Members, fields);
                    break;
            }
        }
    }

    private static bool Contains(List<SmtpRecipient> recipients, string address)
    {
        // A linear search: a message has a handful of recipients (a thousand cost a few milliseconds). A domain written
        // once in Unicode and once as its A-label, or a local part written once quoted and once not ("bob"@ and bob@,
        // RFC 5321 §4.1.2), is the same mailbox: compared so, it is sent to once (the server stores one copy per RCPT).
        address = SameMailboxKey(address);
        foreach (var recipient in recipients)
        {
            if (string.Equals(SameMailboxKey(recipient.Address), address, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether an address of the envelope holds a character outside ASCII.</summary>
    public static bool HasNonAscii(SmtpEnvelope envelope)
    {
        if (!IsAscii(envelope.ReversePath))
        {
            return true;
        }

        foreach (var recipient in envelope.Recipients)
        {
            if (!IsAscii(recipient.Address))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// The envelope with every non-ASCII domain in A-label form (IDNA, RFC 5891), for a server without SMTPUTF8. A
    /// non-ASCII local part cannot be converted and is left as it is: the send then returns NotSent with
    /// <see cref="SmtpErrorCode.ExtensionNotSupported"/> before MAIL.
    /// </summary>
    public static SmtpEnvelope ToALabels(SmtpEnvelope envelope)
    {
        if (!HasNonAscii(envelope))
        {
            return envelope;
        }

        var recipients = new List<SmtpRecipient>(envelope.Recipients.Count);
        foreach (var recipient in envelope.Recipients)
        {
            recipients.Add(new SmtpRecipient(ALabel(recipient.Address)) { Notify = recipient.Notify, OriginalRecipient = recipient.OriginalRecipient, Parameters = recipient.Parameters });
        }

        return new SmtpEnvelope(ALabel(envelope.ReversePath), recipients)
        {
            Body = envelope.Body,
            Size = envelope.Size,
            SmtpUtf8 = envelope.SmtpUtf8,
            Return = envelope.Return,
            EnvelopeId = envelope.EnvelopeId,
            RequireTls = envelope.RequireTls,
            MailParameters = envelope.MailParameters,
        };
    }

    /// <summary>The address with its domain in A-label form (<c>user@bücher.example</c> → <c>user@xn--bcher-kva.example</c>).</summary>
    /// <exception cref="ArgumentException">The domain is not a valid internationalized domain name.</exception>
    public static string ALabel(string address)
    {
        var at = address.LastIndexOf('@');
        if (at < 0 || IsAscii(address.AsSpan(at + 1)))
        {
            return address;
        }

        return string.Concat(address.AsSpan(0, at + 1), Idn.GetAscii(address[(at + 1)..]));
    }

    private static bool IsAddressChar(char c) => char.IsAsciiLetterOrDigit(c) || c > '\u007F' || "!#$%&'*+-/=?^_`{|}~.".Contains(c, StringComparison.Ordinal);

    /// <summary>The address with its domain in A-label form and a quoted local part without its quotes and quoted-pairs.</summary>
    private static string SameMailboxKey(string address)
    {
        address = ALabelOrAsIs(address);
        var at = address.LastIndexOf('@');
        if (at < 2 || address[0] != '"' || address[at - 1] != '"')
        {
            return address;
        }

        var local = new System.Text.StringBuilder(at);
        for (var i = 1; i < at - 1; i++)
        {
            local.Append(address[i] == '\\' && i + 1 < at - 1 ? address[++i] : address[i]);
        }

        return local.Append(address, at, address.Length - at).ToString();
    }

    private static string ALabelOrAsIs(string address)
    {
        try
        {
            return ALabel(address);
        }
        catch (ArgumentException)
        {
            return address;
        }
    }

    private static bool IsAscii(ReadOnlySpan<char> text) => !text.ContainsAnyExceptInRange('\0', '\u007F');
}
