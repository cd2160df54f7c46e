using System.Globalization;
using System.Text;
using MailPipe.Protocol;

namespace MailPipe.Sending;

/// <summary>Before MAIL: the message checked against the capabilities, its body type and MAIL/RCPT parameters decided.</summary>
internal sealed partial class TransactionSender
{
    private static readonly byte[] MailVerb = "MAIL FROM:"u8.ToArray();
    private static readonly byte[] RcptVerb = "RCPT TO:"u8.ToArray();

    /// <summary>Where <see cref="Prepare"/> builds the MAIL parameters (one call at a time).</summary>
    private readonly StringBuilder _mailParameters = new();

    /// <summary>The last MAIL parameter string, given again while the parameters stay the same.</summary>
    private string? _lastMailParameters;

    /// <summary>
    /// Checks a message against the server's capabilities and builds its MAIL and RCPT parameters and its content plan;
    /// stops it (<see cref="TransactionStop.NotAttempted"/>) instead of sending what cannot succeed.
    /// </summary>
    /// <exception cref="ArgumentException">Raw parameters hold CR, LF or NUL (the transaction is stopped NotAttempted with it first).</exception>
    private (string? Mail, string?[] Recipients, SmtpContentPlan Plan) Prepare(MailTransaction tx)
    {
        _host.TransactionStarting(tx, _chunking);
        var capabilities = _host.Capabilities;
        var checkedEnvelope = _validated ? tx.Envelope : null;
        if (tx.Message.BeginSend(tx, capabilities, _chunking) is { } notSendable)
        {
            // Content that cannot be replayed, or a message for the connection that could not be made: nothing written.
            tx.Stop(TransactionStop.NotAttempted, notSendable);
            return default;
        }

        var envelope = tx.Envelope;
        if (!ReferenceEquals(envelope, checkedEnvelope))
        {
            // A sequence's message, or the message a ForConnection selector chose: checked here, once. Nothing of an
            // invalid one was written; its result says why (NotSent with the check's exception), and the call ends.
            try
            {
                MailParameters.Validate(envelope);
            }
            catch (ArgumentException ex)
            {
                tx.Stop(TransactionStop.NotAttempted, ex);
                throw;
            }
        }

        var plan = SmtpContentRules.Plan(envelope.Body, tx.Message.Bytes, _chunking, capabilities);

        // Only for a server that offers SIZE. Text goes out with CRLF line ends (RFC 1870 §3 counts them): its length as
        // given can be less.
        long? size;
        try
        {
            size = envelope.Size ?? (capabilities.MaxMessageSize is null ? null
                : plan.Body != SmtpBodyType.BinaryMime ? tx.Message.TextSize() : tx.Message.ContentLength);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The caller's stream failed (its Length, or a memory stream's read): that message only, before MAIL. It
            // was thrown out of the call, which closed the connection and lost the other messages' results.
            tx.Stop(TransactionStop.NotAttempted, new SmtpException(SmtpErrorCode.ContentReadFailed, $"The size of the content stream could not be read ({ex.Message}); the message was not sent.", ex));
            return default;
        }

        if (size is { } declared && capabilities.MaxMessageSize is { } limit && limit > 0 && declared > limit)
        {
            tx.Stop(TransactionStop.NotAttempted, new SmtpException(SmtpErrorCode.MessageTooLarge, $"The message ({declared} bytes) is larger than the server's SIZE limit ({limit} bytes, RFC 1870); it was not sent."));
            return default;
        }

        if (tx.Message.Bytes is null && capabilities.MaxMessageSize is { } max && max > 0)
        {
            // Streamed content of unknown length: stopped before its end once it is larger than the server's SIZE
            // (RFC 1870 §4), NotSent, rather than sent whole for the server to refuse, or to drop the connection over.
            plan = plan with { Guard = plan.Guard.WithSizeLimit(max) };
        }

        if (plan.Refusal is { } refusal)
        {
            tx.Stop(TransactionStop.NotAttempted, new SmtpException(SmtpErrorCode.ExtensionNotSupported, refusal));
            return default;
        }

        var unsupported = plan.NotSentReason ?? plan.Body switch
        {
            SmtpBodyType.EightBitMime when !capabilities.Supports8BitMime => "8BITMIME (RFC 6152)",
            SmtpBodyType.BinaryMime when !(capabilities.SupportsBinaryMime && _chunking) => "BINARYMIME with CHUNKING (RFC 3030)",
            _ => null,
        };
        var smtpUtf8 = envelope.SmtpUtf8 || (envelope.HasNonAsciiAddress && (capabilities.SupportsSmtpUtf8 || SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) is not null));
        if (smtpUtf8 && !capabilities.SupportsSmtpUtf8)
        {
            // Named first, and with the content's need when both are missing: UTF-8 in the header section needs
            // 8BITMIME too, and naming only that one sent users looking for an encoding the address cannot have.
            var why = SmtpAddressRules.WhyNeedsSmtpUtf8(envelope) ?? "SMTPUTF8 (RFC 6531), asked for by the envelope";
            unsupported = unsupported is null ? why : $"{why}; and {unsupported}";
        }

        if (unsupported is null && envelope.RequireTls && !(_host.IsTls && capabilities.SupportsRequireTls))
        {
            unsupported = "REQUIRETLS (RFC 8689) over TLS";
        }

        if (unsupported is not null)
        {
            tx.Stop(TransactionStop.NotAttempted, new SmtpException(SmtpErrorCode.ExtensionNotSupported, $"The message needs {unsupported}, which the server does not offer (or the session lacks); it was not sent."));
            return default;
        }

        var dsn = capabilities.SupportsDsn;
        var mail = _mailParameters.Clear();
        MailParameters.AppendMail(mail, capabilities.MaxMessageSize is null ? null : size, plan.Body, smtpUtf8, envelope.RequireTls, dsn, envelope);

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

        return (MailParameterText(mail), recipients, plan);
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

    private void WriteMail(MailTransaction tx, string? parameters)
    {
        CallerOpenedTransaction = false;
        _channel.WritePathCommand(MailVerb, "MAIL FROM", SmtpAddressRules.ForServer(tx.Envelope.ReversePath, _host.Capabilities.SupportsSmtpUtf8), parameters);
    }

    /// <summary>Writes RCPT for one recipient; <paramref name="parameters"/> (from <see cref="Prepare"/>) is empty when no recipient has any.</summary>
    private void WriteRcpt(MailTransaction tx, int index, string?[] parameters) =>
        _channel.WritePathCommand(RcptVerb, "RCPT TO", SmtpAddressRules.ForServer(tx.Envelope.Recipients[index].Address, _host.Capabilities.SupportsSmtpUtf8), parameters.Length == 0 ? null : parameters[index]);
}
