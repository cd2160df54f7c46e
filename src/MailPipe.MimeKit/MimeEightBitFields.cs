using MimeKit;

namespace MailPipe;

/// <summary>
/// Finds a header field that would put 8-bit octets on the wire (raw UTF-8 kept from a parsed message, a UTF-8 mailbox),
/// for a server without 8BITMIME: preparing the parts for 7-bit re-encodes bodies, never fields, so such a message
/// cannot go to that server as it is. Said before MAIL, naming the field and where it is, instead of a refusal of
/// "an 8-bit octet at offset N" in the middle of the data, which also cost the connection.
/// </summary>
internal static class MimeEightBitFields
{
    /// <summary>
    /// Why <paramref name="message"/> cannot go to a server without 8BITMIME because of a header field (which one, where,
    /// what to do), or <see langword="null"/>. Bcc and Resent-Bcc of the message's own header are not sent; an attached
    /// message's fields are (they are its content).
    /// </summary>
    public static string? Problem(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var found = Find(message, "the message's header", topLevel: true);
        if (found is not { } hit)
        {
            return null;
        }

        var address = hit.Field.Id is HeaderId.From or HeaderId.Sender or HeaderId.ReplyTo or HeaderId.To or HeaderId.Cc
            or HeaderId.ResentFrom or HeaderId.ResentSender or HeaderId.ResentTo or HeaderId.ResentCc;
        return $"The header field {hit.Field.Field} of {hit.Where} holds 8-bit octets (raw UTF-8, RFC 6532) and the server does not offer 8BITMIME (RFC 6152): "
            + "preparing the parts for 7-bit re-encodes their bodies, not header fields, so the message was not sent (nothing was written). "
            + (address
                ? "A non-ASCII mailbox address needs a server that offers 8BITMIME and SMTPUTF8 (RFC 6531); a non-ASCII display name is encoded (RFC 2047) when the field is set again in code (message.From.Clear(), then Add). "
                : $"Set the field again in code (message.Headers[\"{hit.Field.Field}\"] = value, or the property such as Subject) so that MimeKit encodes it (RFC 2047 encoded-words), or send through a server that offers 8BITMIME.");
    }

    /// <param name="message">The message (the top-level one, or one attached as message/rfc822).</param>
    /// <param name="where">How its header is named.</param>
    /// <param name="topLevel">Whether it is the message sent (its Bcc and Resent-Bcc are not).</param>
    /// <param name="path">The part number of an attached message (its body's parts are numbered under it); empty for the top level.</param>
    private static (Header Field, string Where)? Find(MimeMessage message, string where, bool topLevel, string path = "")
    {
        foreach (var field in message.Headers)
        {
            if (!(topLevel && field.Id is HeaderId.Bcc or HeaderId.ResentBcc) && IsEightBit(field))
            {
                return (field, where);
            }
        }

        return message.Body is { } body ? Find(body, path, topLevel ? "the message's body" : $"the body of {where}") : null;
    }

    /// <param name="entity">The entity.</param>
    /// <param name="path">Its part number (1, 2.1; RFC 3501 §6.4.5), of the entity or of its children.</param>
    /// <param name="bodyLabel">How the entity is named when it is a message's body; <see langword="null"/> for a part.</param>
    private static (Header Field, string Where)? Find(MimeEntity entity, string path, string? bodyLabel)
    {
        foreach (var field in entity.Headers)
        {
            if (IsEightBit(field))
            {
                var what = $"{entity.ContentType.MimeType}{(entity is MimePart { FileName: { } name } ? $", \"{name}\"" : string.Empty)}";
                return (field, $"{bodyLabel ?? "part " + path} ({what})");
            }
        }

        switch (entity)
        {
            case Multipart multipart:
                for (var i = 0; i < multipart.Count; i++)
                {
                    if (Find(multipart[i], path.Length == 0 ? $"{i + 1}" : $"{path}.{i + 1}", null) is { } hit)
                    {
                        return hit;
                    }
                }

                return null;
            case MessagePart { Message: { } attached }:
                return Find(attached, $"the message attached as part {(path.Length == 0 ? "1" : path)} ({entity.ContentType.MimeType})", topLevel: false, path.Length == 0 ? "1" : path);
            default:
                return null;
        }
    }

    private static bool IsEightBit(Header field) => field.RawValue.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0;
}
