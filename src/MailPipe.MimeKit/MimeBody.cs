using MimeKit;

namespace MailPipe;

/// <summary>What the body of a <see cref="MimeMessage"/> needs of the transport, read from its MIME structure (the declared transfer encodings), never by scanning its bytes.</summary>
internal enum MimeBodyNeed
{
    /// <summary>Every leaf part is 7bit, quoted-printable, base64 or uuencode: plain SMTP carries it.</summary>
    SevenBit,

    /// <summary>A part is 8bit, or a text part has no declared encoding (its text may be 8-bit): needs 8BITMIME (RFC 6152).</summary>
    EightBit,

    /// <summary>A part is binary, or a non-text part has no declared encoding (raw bytes): needs BINARYMIME with CHUNKING (RFC 3030).</summary>
    Binary,
}

/// <summary>Reads <see cref="MimeBodyNeed"/> from the entity tree.</summary>
internal static class MimeBody
{
    public static MimeBodyNeed Need(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return message.Body is null ? MimeBodyNeed.SevenBit : Need(message.Body);
    }

    private static MimeBodyNeed Need(MimeEntity entity)
    {
        switch (entity)
        {
            case Multipart multipart:
                var need = MimeBodyNeed.SevenBit;
                foreach (var child in multipart)
                {
                    need = Max(need, Need(child));
                    if (need == MimeBodyNeed.Binary)
                    {
                        break;
                    }
                }

                return need;
            case MessagePart { Message: { } embedded }:
                return Need(embedded);
            case MimePart part:
                return part.ContentTransferEncoding switch
                {
                    ContentEncoding.SevenBit or ContentEncoding.Base64 or ContentEncoding.QuotedPrintable or ContentEncoding.UUEncode => MimeBodyNeed.SevenBit,
                    ContentEncoding.EightBit => MimeBodyNeed.EightBit,
                    ContentEncoding.Binary => MimeBodyNeed.Binary,
                    _ => part is TextPart || part.ContentType.IsMimeType("text", "*") ? MimeBodyNeed.EightBit : MimeBodyNeed.Binary,
                };
            default:
                // message/partial, message/external-body and other leaf entities: written as they are; assume 8-bit.
                return MimeBodyNeed.EightBit;
        }
    }

    private static MimeBodyNeed Max(MimeBodyNeed a, MimeBodyNeed b) => a > b ? a : b;
}
