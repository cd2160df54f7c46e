using System.Globalization;
using MimeKit;

namespace MailPipe;

/// <summary>The envelope of a <see cref="MimeMessage"/> from its headers, and its domains in A-label form.</summary>
internal static class MimeEnvelope
{
    private static readonly IdnMapping Idn = new();

    /// <summary>The envelope the headers give (<see cref="HeaderFieldEnvelope"/> has the rules).</summary>
    /// <exception cref="ArgumentException">No sender address, no recipient, or a field of these that cannot be read.</exception>
    public static SmtpEnvelope Create(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var read = HeaderFieldEnvelope.Read(message.Headers);

        // A field that cannot be read is named first: it is what to correct (the reverse path, else the recipients).
        var senders = read.Resent ? "Resent-Sender or Resent-From" : "Sender or From";
        var recipientNames = read.Resent ? "Resent-To, Resent-Cc or Resent-Bcc" : "To, Cc or Bcc";
        if (read.UnreadableSenderField is { } sender)
        {
            throw new ArgumentException($"The message has no {senders} address that could be read, so there is no reverse path: {CannotParse(sender)}", nameof(message));
        }

        if (read.UnreadableRecipientField is { } unreadable)
        {
            // Sent to the others alone, the recipient the author wrote there would be left out without a word.
            throw new ArgumentException(
                read.Recipients.Count == 0
                    ? $"The message has no {recipientNames} address that could be read: {CannotParse(unreadable)}"
                    : $"The message is not sent to its other recipients alone: the field {unreadable.Field}: '{Quote(unreadable)}' cannot be read as an address list (a mailbox is local-part@domain, RFC 5322 §3.4). Correct the field, or give an envelope of your own (ToSmtpMessage(envelope)).",
                nameof(message));
        }

        if (read.ReversePath is null)
        {
            throw new ArgumentException(
                FirstWithValue(read.SenderFields) is { } field
                    ? $"The message has no {senders} address that could be read, so there is no reverse path: {HoldsNone(field)}"
                    : read.Resent ? "The message has Resent-* fields but neither Resent-Sender nor a Resent-From address: there is no reverse path." : "The message has neither a Sender nor a From address: there is no reverse path.",
                nameof(message));
        }

        if (read.Recipients.Count == 0)
        {
            throw new ArgumentException(
                FirstWithValue(read.RecipientFields) is { } field
                    ? $"The message has no {recipientNames} address that could be read: {HoldsNone(field)}"
                    : read.Resent ? "The message was resent but has no Resent-To, Resent-Cc or Resent-Bcc address." : "The message has no To, Cc or Bcc address.",
                nameof(message));
        }

        var recipients = new List<SmtpRecipient>(read.Recipients.Count);
        foreach (var address in read.Recipients)
        {
            recipients.Add(new SmtpRecipient(address));
        }

        return new SmtpEnvelope(read.ReversePath, recipients);
    }

    /// <summary>
    /// For a missing address: the first of <paramref name="fields"/> that is there with a value MimeKit read no address
    /// from (<c>To: undisclosed-recipients:;</c>), so that the error does not call a field missing that the user can see;
    /// <see langword="null"/> when there is none.
    /// </summary>
    private static Header? FirstWithValue(IReadOnlyList<Header> fields)
    {
        foreach (var field in fields)
        {
            if (field.Value.Trim().Length > 0)
            {
                return field;
            }
        }

        return null;
    }

    /// <summary>
    /// The field, quoted, as one MimeKit cannot parse as an address list: not "holds none", which a good address written
    /// next to the bad one (<c>To: bob@, carol@example.test</c>) would contradict.
    /// </summary>
    private static string CannotParse(Header field) =>
        $"the field {field.Field}: '{Quote(field)}' cannot be read as an address list (a mailbox is local-part@domain, RFC 5322 §3.4).";

    /// <summary>The field, quoted, as one that holds no address that could be read (<c>To: undisclosed-recipients:;</c>).</summary>
    private static string HoldsNone(Header field) =>
        $"the field {field.Field}: '{Quote(field)}' holds none (a mailbox is local-part@domain, RFC 5322 §3.4).";

    /// <summary>The field's value for an error message: at most 100 characters.</summary>
    private static string Quote(Header field)
    {
        var value = field.Value.Trim();
        return value.Length > 100 ? value[..100] + "..." : value;
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
