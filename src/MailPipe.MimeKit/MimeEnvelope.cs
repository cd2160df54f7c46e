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
        var resent = message.ResentSender is not null || message.ResentFrom.Count > 0;
        var sender = resent
            ? message.ResentSender ?? message.ResentFrom.Mailboxes.FirstOrDefault()
            : message.Sender ?? message.From.Mailboxes.FirstOrDefault();
        if (sender is null || string.IsNullOrEmpty(sender.Address))
        {
            throw new ArgumentException(
                resent ? "The message has Resent-* fields but neither Resent-Sender nor a Resent-From address: there is no reverse path." : "The message has neither a Sender nor a From address: there is no reverse path.",
                nameof(message));
        }

        var recipients = new List<SmtpRecipient>();
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var lists = resent ? new[] { message.ResentTo, message.ResentCc, message.ResentBcc } : new[] { message.To, message.Cc, message.Bcc };
        foreach (var list in lists)
        {
            foreach (var mailbox in list.Mailboxes)
            {
                if (!string.IsNullOrEmpty(mailbox.Address) && seen.Add(mailbox.Address))
                {
                    recipients.Add(new SmtpRecipient(mailbox.Address));
                }
            }
        }

        if (recipients.Count == 0)
        {
            throw new ArgumentException(resent ? "The message was resent but has no Resent-To, Resent-Cc or Resent-Bcc address." : "The message has no To, Cc or Bcc address.", nameof(message));
        }

        return new SmtpEnvelope(sender.Address, recipients);
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
