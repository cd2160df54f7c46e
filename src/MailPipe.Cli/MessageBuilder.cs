using System.Text;
using MimeKit;
using MimeKit.Utils;

namespace MailPipe.Cli;

/// <summary>A file given with <c>--attach</c>, read before the connection is made.</summary>
/// <param name="FileName">The file's name, without its directory (the attachment's filename parameter).</param>
/// <param name="Content">The file's bytes.</param>
internal sealed record Attachment(string FileName, byte[] Content);

/// <summary>
/// A simple text message built from <c>--from</c>, <c>--to</c>, <c>--subject</c> and <c>--body</c> (RFC 5322 with one
/// MIME text/plain part, RFC 2045): From, To, Subject, Date, Message-ID, MIME-Version, Content-Type
/// <c>text/plain; charset=utf-8</c> and a Content-Transfer-Encoding chosen for the body and the server.
/// </summary>
internal sealed class MessageBuilder
{
    /// <summary>The longest line SMTP carries, without its CRLF (RFC 5321 §4.5.3.1.6).</summary>
    private const int MaxLineOctets = 998;

    private const string ContentTypeField = "Content-Type";

    private const string ContentTransferEncodingField = "Content-Transfer-Encoding";

    private static readonly HashSet<string> OwnFields = new(["From", "To", "Subject", "Date", "Message-ID", "MIME-Version"], StringComparer.OrdinalIgnoreCase);

    /// <summary>Creates a builder; the Date and Message-ID are fixed now, so each rendering is the same message.</summary>
    /// <param name="from">The author.</param>
    /// <param name="to">The recipients shown in the To field.</param>
    /// <param name="subject">The subject, or <see langword="null"/> for an empty one.</param>
    /// <param name="body">The body text, in any line-ending convention, or <see langword="null"/> for an empty body.</param>
    /// <param name="date">The Date field.</param>
    public MessageBuilder(MailboxAddress from, IReadOnlyList<MailboxAddress> to, string? subject, string? body, DateTimeOffset date)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        From = from;
        To = to;
        Subject = subject ?? string.Empty;
        Body = NormalizeLineEnds(body ?? string.Empty);
        Date = date;
        var at = from.Address.LastIndexOf('@');
        var domain = at >= 0 && at < from.Address.Length - 1 ? from.Address[(at + 1)..] : "localhost";
        MessageId = MimeUtils.GenerateMessageId(domain);
    }

    /// <summary>The author.</summary>
    public MailboxAddress From { get; }

    /// <summary>The To recipients.</summary>
    public IReadOnlyList<MailboxAddress> To { get; }

    /// <summary>The subject.</summary>
    public string Subject { get; }

    /// <summary>The body, with CRLF line ends and a final line end.</summary>
    public string Body { get; }

    /// <summary>The Date field.</summary>
    public DateTimeOffset Date { get; }

    /// <summary>The Message-ID, without angle brackets.</summary>
    public string MessageId { get; }

    /// <summary>
    /// <c>--header</c> fields, in order: one the builder writes itself (From, To, Subject, Date, Message-ID, MIME-Version)
    /// replaces it, and Content-Type sets the type of the text (the last one given); any other is added, so a name
    /// given twice appears twice. Each must pass <see cref="TryCheckHeader"/>.
    /// </summary>
    public IReadOnlyList<HeaderArgument> Headers { get; init; } = [];

    /// <summary><c>--attach</c> files, in order: with any, the message is <c>multipart/mixed</c>: the text, then each file as a base64 attachment (RFC 2046 §5.1.3, RFC 2183).</summary>
    public IReadOnlyList<Attachment> Attachments { get; init; } = [];

    /// <summary>
    /// Whether a <c>--header</c> field can go into a built message: a value MimeKit cannot parse for a structured field
    /// (a Content-Type without a subtype) would fail the rendering after the connection was made. Content-Type sets the
    /// type of the text (RFC 2045 §5), so it must be <c>text/*</c>, and its charset, if any, UTF-8 (the body's); the
    /// Content-Transfer-Encoding is the builder's choice for the body and the server (<see cref="ChooseEncoding"/>).
    /// </summary>
    /// <param name="header">The field.</param>
    /// <param name="problem">Why it cannot, otherwise <see langword="null"/>.</param>
    /// <returns>Whether it can.</returns>
    public static bool TryCheckHeader(HeaderArgument header, out string? problem)
    {
        ArgumentNullException.ThrowIfNull(header);
        problem = null;
        if (header.Name.Equals(ContentTransferEncodingField, StringComparison.OrdinalIgnoreCase))
        {
            problem = "cannot be set for a built message: mailpipe chooses the Content-Transfer-Encoding (7bit, 8bit or quoted-printable) for the body and the server";
        }
        else if (header.Name.Equals(ContentTypeField, StringComparison.OrdinalIgnoreCase))
        {
            if (!ContentType.TryParse(header.Value, out var type))
            {
                problem = "is not a MIME type (RFC 2045 §5.1: type/subtype, then ; parameters), such as text/html";
            }
            else if (!type.MediaType.Equals("text", StringComparison.OrdinalIgnoreCase))
            {
                problem = "sets the type of the text built from --body, so it must be a text/ type (text/html, text/plain); other content goes as a message file or with --attach";
            }
            else if (type.Charset is { } charset && !charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) && !charset.Equals("utf8", StringComparison.OrdinalIgnoreCase))
            {
                problem = $"declares charset {charset}, but the text is sent in UTF-8; leave the charset out (utf-8 is added) or give charset=utf-8";
            }
        }
        else
        {
            try
            {
                _ = new Header(Encoding.UTF8, header.Name, header.Value);
            }
            catch (ParseException ex)
            {
                problem = $"is not a valid {header.Name} field ({ex.Message})";
            }
            catch (ArgumentException ex)
            {
                problem = $"is not a valid header field ({ex.Message})";
            }
        }

        return problem is null;
    }

    /// <summary>
    /// The transfer encoding the body needs: <c>7bit</c> for short lines of ASCII, <c>8bit</c> for other text with
    /// short lines when the server takes 8-bit data (8BITMIME, RFC 6152), otherwise <c>quoted-printable</c>.
    /// </summary>
    /// <param name="server8BitMime">Whether the server announced 8BITMIME.</param>
    /// <returns>The encoding.</returns>
    public ContentEncoding ChooseEncoding(bool server8BitMime)
    {
        var ascii = true;
        var fits = true;
        foreach (var line in Body.Split("\r\n"))
        {
            if (Encoding.UTF8.GetByteCount(line) > MaxLineOctets)
            {
                fits = false;
            }

            foreach (var c in line)
            {
                if (c > 0x7F)
                {
                    ascii = false;
                }
                else if (char.IsControl(c) && c != '\t')
                {
                    // Control characters other than TAB survive neither 7bit nor 8bit reliably (RFC 2045 §2.7, §2.8).
                    fits = false;
                }
            }
        }

        if (!fits)
        {
            return ContentEncoding.QuotedPrintable;
        }

        if (ascii)
        {
            return ContentEncoding.SevenBit;
        }

        return server8BitMime ? ContentEncoding.EightBit : ContentEncoding.QuotedPrintable;
    }

    /// <summary>Renders the message with CRLF line ends.</summary>
    /// <param name="encoding">The body's Content-Transfer-Encoding (see <see cref="ChooseEncoding"/>).</param>
    /// <returns>The message bytes.</returns>
    public byte[] Render(ContentEncoding encoding)
    {
        using var message = new MimeMessage();
        message.From.Add(From);
        message.To.AddRange(To);
        message.Subject = Subject;
        message.Date = Date;
        message.MessageId = MessageId;
        var type = Headers.LastOrDefault(h => h.Name.Equals(ContentTypeField, StringComparison.OrdinalIgnoreCase)) is { } given
            ? ContentType.Parse(given.Value)
            : new ContentType("text", "plain");
        var part = new TextPart(type.MediaSubtype);
        foreach (var parameter in type.Parameters.Where(p => !p.Name.Equals("charset", StringComparison.OrdinalIgnoreCase)))
        {
            part.ContentType.Parameters.Add(parameter.Name, parameter.Value);
        }

        part.SetText(Encoding.UTF8, Body);
        part.ContentType.Charset = "utf-8";
        part.ContentTransferEncoding = encoding;
        if (Attachments.Count == 0)
        {
            message.Body = part;
        }
        else
        {
            var mixed = new Multipart("mixed") { part };
            foreach (var attachment in Attachments)
            {
                mixed.Add(new MimePart(MimeTypes.GetMimeType(attachment.FileName))
                {
                    Content = new MimeContent(new MemoryStream(attachment.Content, writable: false)),
                    ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
                    ContentTransferEncoding = ContentEncoding.Base64,
                    FileName = attachment.FileName,
                });
            }

            message.Body = mixed;
        }

        // Content-Type is the text part's own field, set above.
        foreach (var header in Headers.Where(h => !h.Name.Equals(ContentTypeField, StringComparison.OrdinalIgnoreCase)))
        {
            if (OwnFields.Contains(header.Name))
            {
                message.Headers.Replace(header.Name, Encoding.UTF8, header.Value);
            }
            else
            {
                message.Headers.Add(header.Name, Encoding.UTF8, header.Value);
            }
        }

        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        format.International = false;
        using var output = new MemoryStream();
        message.WriteTo(format, output);
        return output.ToArray();
    }

    /// <summary>CRLF line ends, and a final one so the body is whole lines (RFC 5322 §2.3).</summary>
    private static string NormalizeLineEnds(string text)
    {
        var crlf = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Replace("\n", "\r\n", StringComparison.Ordinal);
        return crlf.Length == 0 || crlf.EndsWith("\r\n", StringComparison.Ordinal) ? crlf : crlf + "\r\n";
    }
}
