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
    /// when the message was resent, else <c>To</c>, <c>Cc</c> and <c>Bcc</c>; groups flattened, each address once.
    /// </summary>
    /// <exception cref="ArgumentException">No sender address, or no recipient.</exception>
    public static SmtpEnvelope Create(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);

        // Index loops over the address lists rather than their Mailboxes iterators: this runs once per message sent.
        var resent = message.ResentSender is not null || message.ResentFrom.Count > 0;
        var sender = resent ? message.ResentSender ?? FirstMailbox(message.ResentFrom) : message.Sender ?? FirstMailbox(message.From);
        if (sender is null || string.IsNullOrEmpty(sender.Address))
        {
            throw new ArgumentException(
                resent ? "The message has Resent-* fields but neither Resent-Sender nor a Resent-From address: there is no reverse path." : "The message has neither a Sender nor a From address: there is no reverse path.",
                nameof(message));
        }

        var recipients = new List<SmtpRecipient>();
        AddRecipients(recipients, resent ? message.ResentTo : message.To);
        AddRecipients(recipients, resent ? message.ResentCc : message.Cc);
        AddRecipients(recipients, resent ? message.ResentBcc : message.Bcc);
        if (recipients.Count == 0)
        {
            throw new ArgumentException(resent ? "The message was resent but has no Resent-To, Resent-Cc or Resent-Bcc address." : "The message has no To, Cc or Bcc address.", nameof(message));
        }

        return new SmtpEnvelope(sender.Address, recipients);
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
    private static void AddRecipients(List<SmtpRecipient> recipients, InternetAddressList list)
    {
        for (var i = 0; i < list.Count; i++)
        {
            switch (list[i])
            {
                case MailboxAddress { Address: { Length: > 0 } address } when !Contains(recipients, address):
                    recipients.Add(new SmtpRecipient(address));
                    break;
                case GroupAddress group:
                    AddRecipients(recipients, group.Members);
                    break;
            }
        }
    }

    private static bool Contains(List<SmtpRecipient> recipients, string address)
    {
        // A linear search: a message has a handful of recipients (a thousand cost a few milliseconds).
        foreach (var recipient in recipients)
        {
            if (string.Equals(recipient.Address, address, StringComparison.OrdinalIgnoreCase))
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

    private static bool IsAscii(ReadOnlySpan<char> text) => !text.ContainsAnyExceptInRange('\0', '\u007F');
}
