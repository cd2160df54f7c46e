using System.Text;
using MimeKit;

namespace MailPipe.Cli;

/// <summary>The envelope read from a message's header fields, as <c>sendmail -t</c> reads it.</summary>
/// <param name="ReversePath">The sender's address, or <see langword="null"/> when no usable sender field exists.</param>
/// <param name="Recipients">The recipients' addresses, each once, in header order.</param>
/// <param name="UsedResentFields">Whether the <c>Resent-*</c> fields were used (the message is being re-sent, RFC 5322 §3.6.6).</param>
internal sealed record HeaderEnvelope(string? ReversePath, IReadOnlyList<string> Recipients, bool UsedResentFields);

/// <summary>
/// Reads the envelope from the header fields of a message and removes the blind-copy fields, as <c>sendmail -t</c>
/// does. The rules are MailPipe.MimeKit's, for a <see cref="MimeMessage"/> sent without an envelope of its own
/// (<see cref="HeaderFieldEnvelope"/>: <c>Sender</c> else <c>From</c>, to <c>To</c>, <c>Cc</c> and <c>Bcc</c>; the
/// newest block of <c>Resent-*</c> fields of a message being re-sent; each mailbox once), so that a message goes to the
/// same envelope whether it is sent as a file or as a MimeMessage.
/// </summary>
internal static class EnvelopeFromHeaders
{
    /// <summary>Reads the envelope from the header fields.</summary>
    /// <param name="headers">The header section.</param>
    /// <returns>The envelope (the sender may be missing, the recipient list may be empty: the caller decides).</returns>
    /// <exception cref="FormatException">An address field it reads cannot be parsed.</exception>
    public static HeaderEnvelope Extract(HeaderSection headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var read = HeaderFieldEnvelope.Read(ToHeaderList(headers));
        return (read.UnreadableSenderField ?? read.UnreadableRecipientField) is { } field
            ? throw new FormatException($"the {field.Field} header field cannot be parsed as an address list")
            : new HeaderEnvelope(read.ReversePath, read.Recipients, read.Resent);
    }

    /// <summary>Whether a field is a blind-copy field, whose presence must not reach the recipients (<c>Bcc</c>, <c>Resent-Bcc</c>).</summary>
    /// <param name="field">A header field.</param>
    /// <returns>Whether to remove it before sending.</returns>
    public static bool IsBlindCopy(RawHeaderField field) =>
        field.Name.Equals("Bcc", StringComparison.OrdinalIgnoreCase) || field.Name.Equals("Resent-Bcc", StringComparison.OrdinalIgnoreCase);

    /// <summary>The header section without its <c>Bcc</c> and <c>Resent-Bcc</c> fields; every other byte unchanged.</summary>
    /// <param name="headers">The header section.</param>
    /// <returns>The bytes to send in place of the header section.</returns>
    public static byte[] RemoveBlindCopies(HeaderSection headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        return headers.Without(IsBlindCopy);
    }

    /// <summary>
    /// The fields as this section splits them (a bare CR or LF ends a line, as MailPipe sends it), each unfolded on one
    /// CRLF line, parsed by MimeKit: the offsets it sets mark them as parsed, so their domains go as written. A line that
    /// is no field, or whose name RFC 5322 does not allow (§3.6.8), goes under a name of no meaning: it still ends a block
    /// of Resent-* fields, and MimeKit's parser never stops at it.
    /// </summary>
    private static HeaderList ToHeaderList(HeaderSection headers)
    {
        using var fields = new MemoryStream(headers.FieldsEnd + 2);
        foreach (var field in headers.Fields)
        {
            var name = field.Name.Length > 0 && !field.Name.AsSpan().ContainsAnyExceptInRange('!', '~') && !field.Name.Contains(':', StringComparison.Ordinal)
                ? field.Name
                : "X-MailPipe-Not-A-Field";
            fields.Write(Encoding.ASCII.GetBytes(name));
            fields.WriteByte((byte)':');
            fields.Write(field.Name.Length > 0 ? headers.UnfoldedValue(field) : []);
            fields.Write("\r\n"u8);
        }

        fields.Write("\r\n"u8);
        fields.Position = 0;
        return HeaderList.Load(ParserOptions.Default, fields);
    }
}
