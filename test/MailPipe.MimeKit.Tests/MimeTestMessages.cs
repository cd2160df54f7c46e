using System.Text;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>The corpus of issue #14's acceptance: multipart with attachments, 8-bit text, UTF-8 addresses, Bcc, Resent-*; and how each must arrive.</summary>
public static class MimeTestMessages
{
    /// <summary>What MailPipe.MimeKit writes: <see cref="MimeMessage.WriteTo(FormatOptions, Stream, CancellationToken)"/> with CRLF line ends and without the message's own Bcc/Resent-Bcc fields.</summary>
    public static byte[] ExpectedData(MimeMessage message)
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        using var buffer = new MemoryStream();
        message.WriteTo(format, buffer);

        // Bcc and Resent-Bcc (with their folded lines) out of the message's own header, not out of an attached message.
        var text = Encoding.Latin1.GetString(buffer.ToArray());
        var end = text.StartsWith("\r\n", StringComparison.Ordinal) ? 0 : text.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 2;
        var header = System.Text.RegularExpressions.Regex.Replace(text[..end], @"(?im)^(Bcc|Resent-Bcc)[ \t]*:.*\r\n([ \t].*\r\n)*", string.Empty);
        return Encoding.Latin1.GetBytes(header + text[end..]);
    }

    /// <summary>Bytes of an attachment: every byte value, repeated (NUL, CR and LF included).</summary>
    public static byte[] BinaryBytes(int length)
    {
        var bytes = new byte[length];
        for (var i = 0; i < length; i++)
        {
            bytes[i] = (byte)((i * 7) + (i / 251));
        }

        return bytes;
    }

    /// <summary>multipart/mixed: a quoted-printable text part and two base64 attachments; To, Cc and Bcc.</summary>
    public static MimeMessage MultipartWithAttachments(string to, string cc, string bcc)
    {
        var message = Headers("Multipart with attachments", to);
        message.Cc.Add(MailboxAddress.Parse(cc));
        message.Bcc.Add(new MailboxAddress("Hidden", bcc));
        var builder = new BodyBuilder { TextBody = "Two attachments follow.\r\n.\r\nA line with a lone dot above.\r\n" };
        builder.Attachments.Add("data.bin", BinaryBytes(100_000), new ContentType("application", "octet-stream"));
        builder.Attachments.Add("notes.txt", Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("Notes line, long enough to wrap somewhere sensible.\n", 200))), new ContentType("text", "plain"));
        message.Body = builder.ToMessageBody();
        return message;
    }

    /// <summary>A text/plain part in 8bit with UTF-8 text.</summary>
    public static MimeMessage EightBitText(string to)
    {
        var message = Headers("Grüße aus Köln", to);
        var text = new TextPart("plain") { ContentTransferEncoding = ContentEncoding.EightBit };
        text.SetText("utf-8", "Grüße, ça va? Ünïcödé 8-bit text.\r\n.leading dot\r\nЖ ж 中文\r\n");
        message.Body = text;
        return message;
    }

    /// <summary>A multipart with a binary (unencoded) attachment.</summary>
    public static MimeMessage BinaryAttachment(string to)
    {
        var message = Headers("Binary", to);
        var binary = new MimePart("application", "octet-stream")
        {
            Content = new MimeContent(new MemoryStream(BinaryBytes(50_000))),
            ContentTransferEncoding = ContentEncoding.Binary,
            FileName = "raw.bin",
        };
        message.Body = new Multipart("mixed") { new TextPart("plain") { Text = "raw bytes attached" }, binary };
        return message;
    }

    /// <summary>A resent message: the original From/To stay in the headers, the envelope comes from Resent-*.</summary>
    public static MimeMessage Resent(string originalTo, string resentTo, string resentBcc)
    {
        var message = Headers("Resent", originalTo);
        message.ResentFrom.Add(new MailboxAddress("Forwarder", "forwarder@example.test"));
        message.ResentTo.Add(MailboxAddress.Parse(resentTo));
        message.ResentBcc.Add(MailboxAddress.Parse(resentBcc));
        message.ResentDate = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        message.ResentMessageId = "resent-1@example.test";
        message.Body = new TextPart("plain") { Text = "Forwarded as it was." };
        return message;
    }

    private static MimeMessage Headers(string subject, string to)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Sender Name", "sender@example.test"));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        message.Date = new DateTimeOffset(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        message.MessageId = $"{Guid.NewGuid():N}@example.test";
        return message;
    }
}
