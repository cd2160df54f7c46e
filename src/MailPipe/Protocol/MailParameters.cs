using System.Globalization;
using System.Text;

namespace MailPipe.Protocol;

/// <summary>
/// MAIL and RCPT parameters: the one check of the caller's parameter strings, and their wire formatting (RFC 1870 SIZE,
/// RFC 6152/3030 BODY, RFC 6531 SMTPUTF8, RFC 8689 REQUIRETLS, RFC 3461 DSN parameters with xtext); the decisions
/// about which to send stay with the sender.
/// </summary>
internal static class MailParameters
{
    /// <summary>
    /// The one check of an envelope's parameters before anything of its transaction is written: the raw strings, and
    /// the typed values set after construction (<c>init</c>: the addresses were checked when the envelope was made);
    /// what passes is written as is.
    /// </summary>
    /// <param name="envelope">The envelope.</param>
    /// <exception cref="ArgumentException">CR, LF or NUL in a parameter string.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A negative <see cref="SmtpEnvelope.Size"/>, an undefined <see cref="SmtpEnvelope.Body"/> or <see cref="SmtpEnvelope.Return"/>, a <see cref="SmtpRecipient.Notify"/> with an undefined flag or NEVER with another, or an <see cref="SmtpEnvelope.EnvelopeId"/> over 100 characters or with one that is not printable US-ASCII.</exception>
    public static void Validate(SmtpEnvelope envelope)
    {
        SmtpCommandWriter.ValidateArgument(envelope.MailParameters, nameof(SmtpEnvelope.MailParameters));
        SmtpCommandWriter.ValidateArgument(envelope.EnvelopeId, nameof(SmtpEnvelope.EnvelopeId));
        if (envelope.EnvelopeId is { } envelopeId && (envelopeId.Length > 100 || envelopeId.AsSpan().ContainsAnyExceptInRange(' ', '~')))
        {
            // Else the server's 501 to MAIL (Postfix: "Bad ENVID parameter syntax") came back as a refusal of the message.
            throw OutOfRange(nameof(SmtpEnvelope.EnvelopeId), envelopeId, "ENVID (RFC 3461 §4.4) is at most 100 printable US-ASCII characters (space to '~'), sent as xtext.");
        }
        if (envelope.Size is < 0)
        {
            throw OutOfRange(nameof(SmtpEnvelope.Size), envelope.Size, "SIZE (RFC 1870) is a number of bytes, 0 or more; null to declare the content's length when it is known.");
        }

        if (!Enum.IsDefined(envelope.Body) || (envelope.Return is { } ret && !Enum.IsDefined(ret)))
        {
            var name = Enum.IsDefined(envelope.Body) ? nameof(SmtpEnvelope.Return) : nameof(SmtpEnvelope.Body);
            throw OutOfRange(name, name == nameof(SmtpEnvelope.Body) ? envelope.Body : envelope.Return, $"Not a defined {name} value.");
        }

        var recipients = envelope.Recipients;
        for (var i = 0; i < recipients.Count; i++)
        {
            var recipient = recipients[i];
            SmtpCommandWriter.ValidateArgument(recipient.Parameters, nameof(SmtpRecipient.Parameters));
            SmtpCommandWriter.ValidateArgument(recipient.OriginalRecipient, nameof(SmtpRecipient.OriginalRecipient));
            if (recipient.Notify is not (DsnNotify.Default or DsnNotify.Never) && (recipient.Notify & ~(DsnNotify.Success | DsnNotify.Failure | DsnNotify.Delay)) != 0)
            {
                throw OutOfRange(nameof(SmtpRecipient.Notify), recipient.Notify, $"NOTIFY of {recipient.Address} must be NEVER alone, or any of SUCCESS, FAILURE and DELAY (RFC 3461 §4.1).");
            }
        }
    }

    /// <summary>A typed envelope value out of its range, named as the property that holds it.</summary>
    private static ArgumentOutOfRangeException OutOfRange(string property, object? value, string message) => new(property, value, message);

    /// <summary>Appends the MAIL parameters decided by the sender, each with a leading space, in the order they go on the line.</summary>
    /// <param name="mail">Where the parameters go.</param>
    /// <param name="size">SIZE (RFC 1870), or null.</param>
    /// <param name="body">BODY=8BITMIME or BODY=BINARYMIME; nothing for the other body types.</param>
    /// <param name="smtpUtf8">SMTPUTF8 (RFC 6531).</param>
    /// <param name="requireTls">REQUIRETLS (RFC 8689).</param>
    /// <param name="dsn">Whether RET and ENVID may be sent (the server offers DSN).</param>
    /// <param name="envelope">The envelope: RET, ENVID (xtext) and the caller's own parameters.</param>
    public static void AppendMail(StringBuilder mail, long? size, SmtpBodyType body, bool smtpUtf8, bool requireTls, bool dsn, SmtpEnvelope envelope)
    {
        // A keyword the caller wrote in MailParameters replaces MailPipe's own: each goes on the line once.
        var own = envelope.MailParameters;
        if (size is { } declared && !HasKeyword(own, "SIZE"))
        {
            mail.Append(CultureInfo.InvariantCulture, $" SIZE={declared}");
        }

        mail.Append(HasKeyword(own, "BODY") ? string.Empty : body switch { SmtpBodyType.EightBitMime => " BODY=8BITMIME", SmtpBodyType.BinaryMime => " BODY=BINARYMIME", _ => string.Empty });
        mail.Append(smtpUtf8 && !HasKeyword(own, "SMTPUTF8") ? " SMTPUTF8" : string.Empty).Append(requireTls && !HasKeyword(own, "REQUIRETLS") ? " REQUIRETLS" : string.Empty);
        if (dsn && envelope.Return is { } ret && !HasKeyword(own, "RET"))
        {
            mail.Append(ret == DsnReturn.Full ? " RET=FULL" : " RET=HDRS");
        }

        if (dsn && envelope.EnvelopeId is { Length: > 0 } envelopeId && !HasKeyword(own, "ENVID"))
        {
            mail.Append(" ENVID=").Append(Xtext.Encode(envelopeId));
        }

        if (!string.IsNullOrWhiteSpace(envelope.MailParameters))
        {
            mail.Append(' ').Append(envelope.MailParameters.Trim());
        }
    }

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
        if (dsn && recipient.Notify != DsnNotify.Default && !HasKeyword(recipient.Parameters, "NOTIFY"))
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

        if (dsn && recipient.OriginalRecipient is { Length: > 0 } original && !HasKeyword(recipient.Parameters, "ORCPT"))
        {
            // The value is the address; an address type the caller wrote already (RFC 3461 §4.2's "rfc822;") is not
            // written twice. An address that is not ASCII goes with the utf-8 address type (RFC 6533 §3), never as rfc822.
            var address = StripAddressType(original);
            parameters.Append(System.Text.Ascii.IsValid(address)
                ? " ORCPT=rfc822;" + Xtext.Encode(address)
                : " ORCPT=utf-8;" + Xtext.EncodeUtf8Address(address));
        }

        if (!string.IsNullOrWhiteSpace(recipient.Parameters))
        {
            parameters.Append(' ').Append(recipient.Parameters.Trim());
        }

        return parameters.Length == 0 ? null : parameters.ToString(1, parameters.Length - 1);
    }

    /// <summary>Whether the caller's parameter text holds <paramref name="keyword"/> (alone or as <c>keyword=value</c>, any case; RFC 5321 §4.1.2 esmtp-keyword).</summary>
    public static bool HasKeyword(string? parameters, string keyword)
    {
        if (string.IsNullOrWhiteSpace(parameters))
        {
            return false;
        }

        foreach (var range in parameters.AsSpan().SplitAny(' ', '\t'))
        {
            var token = parameters.AsSpan(range);
            var end = token.IndexOf('=');
            if ((end < 0 ? token : token[..end]).Equals(keyword, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The address of an ORCPT value, without a leading <c>rfc822;</c> or <c>utf-8;</c> address type.</summary>
    private static string StripAddressType(string original)
    {
        foreach (var type in (ReadOnlySpan<string>)["rfc822;", "utf-8;"])
        {
            if (original.StartsWith(type, StringComparison.OrdinalIgnoreCase) && original.Length > type.Length)
            {
                return original[type.Length..];
            }
        }

        return original;
    }
}
