using System.Globalization;
using System.Text;
using MailPipe.Protocol;

namespace MailPipe;

/// <summary>MAIL and RCPT parameters from the envelope and the capabilities (SIZE, BODY, SMTPUTF8, DSN, REQUIRETLS), and the checks made before anything is written.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>Where <see cref="Prepare"/> builds the MAIL parameters.</summary>
    private StringBuilder? _mailParameterBuilder;

    /// <summary>The last MAIL parameter string, given again while the parameters stay the same.</summary>
    private string? _lastMailParameters;

    /// <summary>Checks a message against the server's capabilities and builds its MAIL and RCPT parameters; sets <see cref="MailTransaction.NotAttempted"/> instead of sending what cannot succeed.</summary>
    /// <exception cref="ArgumentException">Raw parameters hold CR, LF or NUL.</exception>
    private (string? Mail, string?[] Recipients) Prepare(MailTransaction tx, bool chunking)
    {
        SessionTelemetry.StartTransaction(this, tx, chunking);
        var capabilities = Capabilities;
        if (tx.Message.BeginSend(tx, capabilities, chunking) is { } notSendable)
        {
            // Content that cannot be replayed, or a message for the connection that could not be made: nothing written.
            tx.NotAttempted = notSendable;
            return default;
        }

        var envelope = tx.Envelope;
        Validate(envelope);

        // One builder per session (one operation at a time): most messages have no parameter, or the same ones.
        var mail = _mailParameterBuilder ??= new StringBuilder();
        mail.Clear();
        var size = envelope.Size ?? tx.Message.ContentLength;
        if (size is { } declared && capabilities.MaxMessageSize is { } limit)
        {
            if (limit > 0 && declared > limit)
            {
                tx.NotAttempted = new SmtpException(SmtpErrorCode.MessageTooLarge, $"The message ({declared} bytes) is larger than the server's SIZE limit ({limit} bytes, RFC 1870); it was not sent.");
                return default;
            }

            mail.Append(CultureInfo.InvariantCulture, $" SIZE={declared}");
        }

        var plan = SmtpContentRules.Plan(envelope.Body, tx.Message.Bytes, chunking, capabilities);
        if (plan.NotSentReason is { } contentReason)
        {
            return NotSupported(tx, contentReason);
        }

        switch (plan.Body)
        {
            case SmtpBodyType.EightBitMime when !capabilities.Supports8BitMime:
                return NotSupported(tx, "8BITMIME (RFC 6152)");
            case SmtpBodyType.EightBitMime:
                mail.Append(" BODY=8BITMIME");
                break;
            case SmtpBodyType.BinaryMime when !(capabilities.SupportsBinaryMime && chunking):
                return NotSupported(tx, "BINARYMIME with CHUNKING (RFC 3030)");
            case SmtpBodyType.BinaryMime:
                mail.Append(" BODY=BINARYMIME");
                break;
        }

        if (envelope.SmtpUtf8 || (envelope.HasNonAsciiAddress && (capabilities.SupportsSmtpUtf8 || SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) is not null)))
        {
            if (!capabilities.SupportsSmtpUtf8)
            {
                return NotSupported(tx, SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) ?? "SMTPUTF8 (RFC 6531), asked for by the envelope");
            }

            mail.Append(" SMTPUTF8");
        }

        if (envelope.RequireTls)
        {
            if (_connection?.TlsStream is null || !capabilities.SupportsRequireTls)
            {
                return NotSupported(tx, "REQUIRETLS (RFC 8689) over TLS");
            }

            mail.Append(" REQUIRETLS");
        }

        var dsn = capabilities.SupportsDsn;
        if (dsn && envelope.Return is { } ret)
        {
            mail.Append(ret == DsnReturn.Full ? " RET=FULL" : " RET=HDRS");
        }

        if (dsn && envelope.EnvelopeId is { Length: > 0 } envelopeId)
        {
            mail.Append(" ENVID=").Append(Xtext.Encode(envelopeId));
        }

        if (!string.IsNullOrWhiteSpace(envelope.MailParameters))
        {
            mail.Append(' ').Append(envelope.MailParameters.Trim());
        }

        // Allocated only once a recipient has parameters: most have none.
        string?[] recipients = [];
        var count = envelope.Recipients.Count;
        for (var i = 0; i < count; i++)
        {
            if (MailParameters.ForRecipient(envelope.Recipients[i], dsn) is { } parameters)
            {
                if (recipients.Length == 0)
                {
                    recipients = new string?[count];
                }

                recipients[i] = parameters;
            }
        }

        return (MailParameterText(mail), recipients);
    }

    /// <summary>
    /// The MAIL parameters built (each with a leading space) as one string without the first space; the same text as
    /// the last message's is the same string, so a run of messages with equal parameters (SIZE of one size) makes one.
    /// </summary>
    private string? MailParameterText(StringBuilder mail)
    {
        if (mail.Length == 0)
        {
            return null;
        }

        mail.Remove(0, 1);
        if (_lastMailParameters is { } last && mail.Equals(last.AsSpan()))
        {
            return last;
        }

        return _lastMailParameters = mail.ToString();
    }

    /// <summary>The checks on raw parameter strings (the typed parts were checked when the envelope was made).</summary>
    /// <exception cref="ArgumentException">CR, LF or NUL in a parameter string.</exception>
    private static void Validate(SmtpEnvelope envelope)
    {
        SmtpCommandWriter.ValidateArgument(envelope.MailParameters, nameof(SmtpEnvelope.MailParameters));
        SmtpCommandWriter.ValidateArgument(envelope.EnvelopeId, nameof(SmtpEnvelope.EnvelopeId));
        var recipients = envelope.Recipients;
        for (var i = 0; i < recipients.Count; i++)
        {
            var recipient = recipients[i];
            SmtpCommandWriter.ValidateArgument(recipient.Parameters, nameof(SmtpRecipient.Parameters));
            SmtpCommandWriter.ValidateArgument(recipient.OriginalRecipient, nameof(SmtpRecipient.OriginalRecipient));
        }
    }

    private static (string?, string?[]) NotSupported(MailTransaction tx, string what)
    {
        tx.NotAttempted = new SmtpException(SmtpErrorCode.ExtensionNotSupported, $"The message needs {what}, which the server does not offer (or the session lacks); it was not sent.");
        return default;
    }

    private void WriteMail(MailTransaction tx, string? parameters) => WritePathCommand(MailVerb, "MAIL FROM", SmtpAddressRules.ForServer(tx.Envelope.ReversePath, Capabilities.SupportsSmtpUtf8), parameters);

    /// <summary>Writes RCPT for one recipient; <paramref name="parameters"/> (from <see cref="Prepare"/>) is empty when no recipient has any.</summary>
    private void WriteRcpt(MailTransaction tx, int index, string?[] parameters) =>
        WritePathCommand(RcptVerb, "RCPT TO", SmtpAddressRules.ForServer(tx.Envelope.Recipients[index].Address, Capabilities.SupportsSmtpUtf8), parameters.Length == 0 ? null : parameters[index]);
}
