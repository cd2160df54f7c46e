namespace MailPipe.Cli;

/// <summary>A message file's header section: what it must start with, and the envelope it gives with the run's options.</summary>
internal sealed partial class OutgoingMessage
{
    /// <summary>Whether the message starts with an mbox separator, <c>From</c>, a space and no colon before the end of its line (an obsolete-syntax <c>From :</c> field has one, RFC 5322 §4.5.1).</summary>
    private static bool StartsWithMboxSeparator(ReadOnlySpan<byte> message)
    {
        if (!message.StartsWith("From "u8))
        {
            return false;
        }

        var rest = message["From".Length..];
        var end = rest.IndexOfAny((byte)'\r', (byte)'\n');
        var line = end < 0 ? rest : rest[..end];
        return line.TrimStart(" \t"u8) is var value && (value.IsEmpty || value[0] != (byte)':');
    }

    /// <summary>
    /// Whether the message starts with a header field: a name of printable ASCII other than the colon, then the colon
    /// (white space before it allowed, the obsolete syntax of RFC 5322 §4.5.1), as Postfix's <c>is_header</c> takes it.
    /// </summary>
    private static bool StartsWithField(ReadOnlySpan<byte> message)
    {
        var name = 0;
        while (name < message.Length && message[name] is >= (byte)'!' and <= (byte)'~' and not (byte)':')
        {
            name++;
        }

        var rest = message[name..].TrimStart(" \t"u8);
        return name > 0 && !rest.IsEmpty && rest[0] == (byte)':';
    }

    /// <summary>The envelope from the options and the header fields, and the header section to send (the file's own array when unchanged).</summary>
    private static OutgoingMessage FromHeaders(int index, string name, HeaderSection headers, MessageDefaults defaults, out byte[] header)
    {
        header = headers.Bytes;
        if (headers.Bytes.AsSpan().StartsWith("\uFEFF"u8))
        {
            // An editor's mark, not part of a message (RFC 5322): it would hide the first field, or reach the recipients as part of it.
            return Failed(index, name, defaults.ReversePath, $"{name}: starts with a UTF-8 byte order mark (EF BB BF), which hides its first header field; save it without one");
        }

        if (StartsWithMboxSeparator(headers.Bytes))
        {
            // Not a header field: a receiving server takes the whole header section for the body (Postfix does).
            return Failed(index, name, defaults.ReversePath, $"{name}: starts with an mbox \"From \" line (\"From sender date\", the separator of an mbox file), which is not a header field: a server takes the header section after it for the body; remove that line");
        }

        if (headers.FieldsEnd > 0 && !StartsWithField(headers.Bytes))
        {
            // The same for any first line that is no field (text, a continuation line, ">From "): the envelope would come
            // from fields the server shows as body text.
            return Failed(index, name, defaults.ReversePath, $"{name}: its first line is not a header field (a name, a colon, a value: RFC 5322 §2.2), so a server takes the whole header section for the body; is it a message file?");
        }

        byte[] prefix = [.. defaults.Headers.SelectMany(h => h.ToLine())];
        var reversePath = defaults.ReversePath;
        var recipients = defaults.Recipients;
        var fromHeaders = recipients.Count == 0;
        var resent = false;
        if (reversePath is null || fromHeaders)
        {
            HeaderEnvelope envelope;
            try
            {
                // The --header fields go in front of the file's: the envelope is read from the header section as sent.
                envelope = EnvelopeFromHeaders.Extract(prefix.Length == 0 ? headers : HeaderSection.Parse([.. prefix, .. headers.Bytes]));
            }
            catch (FormatException ex)
            {
                return Failed(index, name, reversePath, $"{name}: {ex.Message}");
            }

            reversePath ??= envelope.ReversePath;
            resent = envelope.UsedResentFields;
            if (fromHeaders)
            {
                recipients = envelope.Recipients;
            }
        }

        if (reversePath is null)
        {
            return Failed(index, name, null, resent
                ? $"{name}: no sender: the message is re-sent (it has Resent-* fields) and has no Resent-From or Resent-Sender field with an address; give --from"
                : $"{name}: no sender: the message has no From or Sender field with an address; give --from");
        }

        if (recipients.Count == 0)
        {
            return Failed(index, name, reversePath, resent
                ? $"{name}: no recipients: the message is re-sent and its Resent-To, Resent-Cc and Resent-Bcc fields hold no address (its To, Cc and Bcc had it already); give --to"
                : $"{name}: no recipients: the message has no To, Cc or Bcc field with an address; give --to");
        }

        if (fromHeaders && headers.Fields.Any(EnvelopeFromHeaders.IsBlindCopy))
        {
            header = EnvelopeFromHeaders.RemoveBlindCopies(headers);
        }

        if (prefix.Length > 0)
        {
            header = [.. prefix, .. header];
        }

        return new OutgoingMessage(index, name) { ReversePath = reversePath, Recipients = recipients };
    }
}
