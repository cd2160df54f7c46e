using System.Buffers;
using MimeKit;

namespace MailPipe;

/// <summary>What the body of a <see cref="MimeMessage"/> needs of the transport, read from its MIME structure (the declared transfer encodings; only a non-text part without one has its bytes searched); and whether a part may hold a line too long for SMTP (its bytes searched for line ends).</summary>
internal enum MimeBodyNeed
{
    /// <summary>Every leaf part is 7bit, quoted-printable, base64 or uuencode: plain SMTP carries it.</summary>
    SevenBit,

    /// <summary>A part is 8bit, or a text part has no declared encoding (its text may be 8-bit): needs 8BITMIME (RFC 6152).</summary>
    EightBit,

    /// <summary>A part is binary, or a non-text part has no declared encoding and holds more than 7-bit text (raw bytes): needs BINARYMIME with CHUNKING (RFC 3030).</summary>
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
                    _ => part is TextPart || part.ContentType.IsMimeType("text", "*") ? MimeBodyNeed.EightBit : UndeclaredNeed(part),
                };
            default:
                // message/partial, message/external-body and other leaf entities: written as they are; assume 8-bit.
                return MimeBodyNeed.EightBit;
        }
    }

    private static MimeBodyNeed Max(MimeBodyNeed a, MimeBodyNeed b) => a > b ? a : b;

    /// <summary>
    /// A non-text part without a declared encoding: RFC 2045 §6.1 makes it 7bit, and a parsed message's part so (an
    /// ASCII attachment written by another program) must go as it is (a DKIM body hash covers it), not re-encoded for a
    /// binary need it does not have. Its bytes are searched: 7-bit octets without NUL or bare CR are
    /// <see cref="MimeBodyNeed.SevenBit"/> (a long line is still found by <see cref="MayHaveLongLine(MimeMessage, int)"/>); anything else,
    /// or content that cannot be read so (stored encoded, not seekable), is <see cref="MimeBodyNeed.Binary"/>.
    /// </summary>
    private static MimeBodyNeed UndeclaredNeed(MimePart part) => part.Content switch
    {
        null => MimeBodyNeed.SevenBit,
        { Encoding: ContentEncoding.Default, Stream: { CanSeek: true } stream } when IsSevenBitText(stream) => MimeBodyNeed.SevenBit,
        _ => MimeBodyNeed.Binary,
    };

    /// <summary>Whether <paramref name="stream"/> holds only octets 1–127 and every CR is followed by LF; read from its start, left there.</summary>
    private static bool IsSevenBitText(Stream stream)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            stream.Seek(0, SeekOrigin.Begin);
            var lastWasCr = false;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                foreach (var octet in buffer.AsSpan(0, read))
                {
                    if (octet is 0 or >= 0x80 || (lastWasCr && octet != (byte)'\n'))
                    {
                        return false;
                    }

                    lastWasCr = octet == (byte)'\r';
                }
            }

            return !lastWasCr;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            stream.Seek(0, SeekOrigin.Begin);
        }
    }

    /// <summary>
    /// Whether a part that goes as it is (no base64, quoted-printable or uuencode transfer encoding) may hold a line of
    /// more than <paramref name="limit"/> octets without its CRLF (RFC 5321 §4.5.3.1.6): only such a message needs
    /// MimeKit's <see cref="MimeMessage.Prepare(EncodingConstraint, int)"/>, which reads every such part through a
    /// filter. Here a part's bytes are searched for line ends at memory speed; content that cannot be read so (stored
    /// encoded, or not seekable) counts as possibly long.
    /// </summary>
    public static bool MayHaveLongLine(MimeMessage message, int limit) => message.Body is { } body && MayHaveLongLine(body, limit);

    private static bool MayHaveLongLine(MimeEntity entity, int limit)
    {
        switch (entity)
        {
            case Multipart multipart:
                foreach (var child in multipart)
                {
                    if (MayHaveLongLine(child, limit))
                    {
                        return true;
                    }
                }

                return false;
            case MessagePart { Message.Body: { } embedded }:
                return MayHaveLongLine(embedded, limit);
            case MimePart { ContentTransferEncoding: ContentEncoding.Base64 or ContentEncoding.QuotedPrintable or ContentEncoding.UUEncode }:
            case MimePart { Content: null }:
                return false;
            case MimePart { Content: { } content }:
                return content.Encoding is not (ContentEncoding.Default or ContentEncoding.SevenBit or ContentEncoding.EightBit or ContentEncoding.Binary)
                    || content.Stream is not { CanSeek: true } stream
                    || HasLongLine(stream, limit);
            default:
                return false;
        }
    }

    /// <summary>
    /// Prepares (MimeKit's <see cref="MimeEntity.Prepare(EncodingConstraint, int)"/>) each part whose own need is more
    /// than <paramref name="carried"/> or that <see cref="MayHaveLongLine(MimeMessage, int)"/> finds (a line of more than
    /// 998 octets), and only those: MimeKit's preparation of the whole message also re-encoded parts that needed nothing
    /// (an ASCII attachment without an encoding, which RFC 2045 makes 7bit, went as base64: a DKIM body hash broken for nothing).
    /// </summary>
    public static void PrepareParts(MimeMessage message, EncodingConstraint constraint, int maxLineLength, MimeBodyNeed carried)
    {
        if (message.Body is { } body)
        {
            PrepareParts(body, constraint, maxLineLength, carried);
        }
    }

    private static void PrepareParts(MimeEntity entity, EncodingConstraint constraint, int maxLineLength, MimeBodyNeed carried)
    {
        switch (entity)
        {
            case Multipart multipart:
                foreach (var child in multipart)
                {
                    PrepareParts(child, constraint, maxLineLength, carried);
                }

                break;
            case MessagePart { Message.Body: { } embedded }:
                PrepareParts(embedded, constraint, maxLineLength, carried);
                break;
            case MimePart part when Need(part) > carried || MayHaveLongLine(part, 998) || (carried == MimeBodyNeed.SevenBit && IsMislabelledSevenBit(part)):
                part.Prepare(constraint, maxLineLength);
                break;
        }
    }

    /// <summary>
    /// A part declared 7bit whose bytes are not 7-bit text (UTF-8 text so labelled, common in the wild): MimeKit's
    /// 7-bit preparation re-encodes it, as it did when it prepared the whole message. Content that cannot be read so is
    /// left as declared.
    /// </summary>
    private static bool IsMislabelledSevenBit(MimePart part) =>
        part is { ContentTransferEncoding: ContentEncoding.SevenBit, Content: { Encoding: ContentEncoding.Default or ContentEncoding.SevenBit, Stream: { CanSeek: true } stream } }
        && !IsSevenBitText(stream);

    /// <summary>
    /// Refolds each field of the message's own header, and of its parts' headers, that has a line of more than
    /// <paramref name="limit"/> octets without its CRLF (a parsed message keeps its fields' raw text: an unfolded
    /// 1,500-octet Subject or file name; RFC 5322 §2.1.1, servers refuse such lines) by setting its value again, which
    /// MimeKit folds; a field without such a line is left as it is, and so is an attached message (content). A line with
    /// nowhere to fold stays as it is.
    /// </summary>
    public static void FoldLongHeaderLines(MimeMessage message, int limit)
    {
        FoldLongHeaderLines(message.Headers, limit);
        if (message.Body is { } body)
        {
            FoldLongHeaderLines(body, limit);
        }
    }

    private static void FoldLongHeaderLines(MimeEntity entity, int limit)
    {
        FoldLongHeaderLines(entity.Headers, limit);
        if (entity is Multipart multipart)
        {
            foreach (var child in multipart)
            {
                FoldLongHeaderLines(child, limit);
            }
        }
    }

    /// <summary>
    /// Whether a field that is sent, of the message's own header or of a part's header, holds an octet over 127 (a
    /// UTF-8 mailbox in Reply-To, raw UTF-8 kept from a parsed message): such a message needs SMTPUTF8 (RFC 6531 §3.4,
    /// RFC 6532). Bcc and Resent-Bcc are not sent; an attached message is content.
    /// </summary>
    public static bool HasEightBitHeader(MimeMessage message) =>
        HasEightBitField(message.Headers) || (message.Body is { } body && HasEightBitHeader(body));

    private static bool HasEightBitHeader(MimeEntity entity)
    {
        if (HasEightBitField(entity.Headers))
        {
            return true;
        }

        if (entity is Multipart multipart)
        {
            foreach (var child in multipart)
            {
                if (HasEightBitHeader(child))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private static bool HasEightBitField(HeaderList headers)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            if (headers[i].Id is not (HeaderId.Bcc or HeaderId.ResentBcc) && headers[i].RawValue.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    private static void FoldLongHeaderLines(HeaderList headers, int limit)
    {
        for (var i = 0; i < headers.Count; i++)
        {
            if (HasLongLine(headers[i], limit))
            {
                headers[i].Value = headers[i].Value;
            }
        }
    }

    private static bool HasLongLine(Header header, int limit)
    {
        var run = header.Field.Length + 1; // "Name:" on the first line
        foreach (var octet in header.RawValue)
        {
            if (octet == (byte)'\n')
            {
                if (run > limit)
                {
                    return true;
                }

                run = 0;
            }
            else if (octet != (byte)'\r')
            {
                run++;
            }
        }

        return run > limit;
    }

    /// <summary>Reads <paramref name="stream"/> from its start and leaves it there (as MimeKit's own writing does).</summary>
    private static bool HasLongLine(Stream stream, int limit)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            stream.Seek(0, SeekOrigin.Begin);
            var run = 0L; // octets of the current line read so far, its CR included
            var lastWasCr = false;
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                var rest = buffer.AsSpan(0, read);
                int lf;
                while ((lf = rest.IndexOf((byte)'\n')) >= 0)
                {
                    var endsWithCr = lf > 0 ? rest[lf - 1] == (byte)'\r' : lastWasCr;
                    if (run + lf - (endsWithCr ? 1 : 0) > limit)
                    {
                        return true;
                    }

                    run = 0;
                    lastWasCr = false;
                    rest = rest[(lf + 1)..];
                }

                run += rest.Length;
                lastWasCr = rest.Length > 0 ? rest[^1] == (byte)'\r' : lastWasCr;
                if (run - 1 > limit)
                {
                    return true;
                }
            }

            return run - (lastWasCr ? 1 : 0) > limit;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            stream.Seek(0, SeekOrigin.Begin);
        }
    }
}
