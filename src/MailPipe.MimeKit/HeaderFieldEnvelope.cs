using System.Globalization;
using System.Text;
using MimeKit;

namespace MailPipe;

/// <summary>
/// The envelope that a message's header fields give, as <c>sendmail -t</c> reads them: one set of rules for a
/// <see cref="MimeMessage"/> sent without an envelope of its own (<see cref="MimeEnvelope"/>) and for the files of
/// <c>mailpipe send</c> (MailPipe.Cli). Address lists are parsed by MimeKit (folded lines, display names, groups,
/// comments, quoted strings, encoded words).
/// </summary>
/// <remarks>
/// <para>Resent: a message with a <c>Resent-To</c>, <c>Resent-Cc</c>, <c>Resent-Bcc</c>, <c>Resent-From</c> or
/// <c>Resent-Sender</c> field (whatever its value) is being resent (RFC 5322 §3.6.6): its original recipients had it
/// already, so only the resent fields count, of the newest block of <c>Resent-*</c> fields (the topmost) when it was
/// resent more than once.</para>
/// <para>Reverse-path: the first mailbox with an address of <c>Sender</c>, else of <c>From</c> (RFC 5322 §3.6.2: the
/// mailbox responsible for the transmission, else the author); for a resent message <c>Resent-Sender</c>, else
/// <c>Resent-From</c>. Groups are flattened; an empty field (or <c>&lt;&gt;</c>) has no address and the next counts.</para>
/// <para>Forward-paths: every mailbox of <c>To</c>, <c>Cc</c> and <c>Bcc</c> (or the three resent fields), every
/// occurrence, in header order, groups flattened, each mailbox once (<see cref="SameMailboxKey"/>).</para>
/// <para>A field of these that MimeKit cannot parse as an address list is reported (<see cref="UnreadableSenderField"/>,
/// <see cref="UnreadableRecipientField"/>), never skipped: a recipient the author wrote is not silently left out, and
/// a sender field is not silently replaced by the next.</para>
/// </remarks>
internal sealed class HeaderFieldEnvelope
{
    private static readonly IdnMapping Idn = new();

    private HeaderFieldEnvelope(bool resent)
    {
        Resent = resent;
    }

    /// <summary>Whether the message is being resent and its <c>Resent-*</c> fields were read.</summary>
    public bool Resent { get; }

    /// <summary>The reverse-path, or <see langword="null"/> when no field gives one (or <see cref="UnreadableSenderField"/> came first).</summary>
    public string? ReversePath { get; private set; }

    /// <summary>The forward-paths, each mailbox once, in header order; possibly none.</summary>
    public IReadOnlyList<string> Recipients => RecipientList;

    /// <summary>The sender field MimeKit could not parse, met before any address: no reverse-path can be trusted.</summary>
    public Header? UnreadableSenderField { get; private set; }

    /// <summary>The first recipient field MimeKit could not parse: its recipients are unknown.</summary>
    public Header? UnreadableRecipientField { get; private set; }

    /// <summary>The fields the reverse-path was looked for in (<c>Sender</c> and <c>From</c>, or the resent ones), for an error message.</summary>
    public IReadOnlyList<Header> SenderFields => SenderFieldList;

    /// <summary>The fields the forward-paths were read from, for an error message.</summary>
    public IReadOnlyList<Header> RecipientFields => RecipientFieldList;

    private List<string> RecipientList { get; } = [];

    private List<Header> SenderFieldList { get; } = [];

    private List<Header> RecipientFieldList { get; } = [];

    /// <summary>Reads the envelope from the header fields.</summary>
    /// <param name="headers">The header fields of the message, in order (topmost first).</param>
    /// <returns>What the fields give; the caller decides what a missing sender, recipient or unreadable field means.</returns>
    public static HeaderFieldEnvelope Read(HeaderList headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var resent = false;
        foreach (var header in headers)
        {
            resent |= header.Id is HeaderId.ResentTo or HeaderId.ResentCc or HeaderId.ResentBcc or HeaderId.ResentFrom or HeaderId.ResentSender;
        }

        var fields = (resent ? NewestResentBlock(headers) : null) ?? (IList<Header>)headers;
        var envelope = new HeaderFieldEnvelope(resent);
        envelope.ReadSender(fields, resent ? HeaderId.ResentSender : HeaderId.Sender, resent ? HeaderId.ResentFrom : HeaderId.From);
        envelope.ReadRecipients(fields, resent ? [HeaderId.ResentTo, HeaderId.ResentCc, HeaderId.ResentBcc] : [HeaderId.To, HeaderId.Cc, HeaderId.Bcc]);
        return envelope;
    }

    /// <summary>
    /// What two ways of writing one mailbox have in common: a domain written once in Unicode and once as its A-label
    /// (RFC 5890), a local part written once quoted and once not (<c>"bob"@</c> and <c>bob@</c>, RFC 5321 §4.1.2). Compare
    /// ignoring case. Each is one recipient: as two RCPTs the server stores two copies.
    /// </summary>
    /// <param name="address">An address.</param>
    /// <returns>The key to compare.</returns>
    public static string SameMailboxKey(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var at = address.LastIndexOf('@');
        if (at < 0)
        {
            return address;
        }

        var domain = address[(at + 1)..];
        if (!IsAscii(domain))
        {
            try
            {
                domain = Idn.GetAscii(domain);
            }
            catch (ArgumentException)
            {
                // Not an IDN: compared as written.
            }
        }

        var local = address.AsSpan(0, at);
        if (local.Length < 2 || local[0] != '"' || local[^1] != '"')
        {
            return string.Concat(local, "@", domain);
        }

        var unquoted = new StringBuilder(local.Length);
        for (var i = 1; i < local.Length - 1; i++)
        {
            unquoted.Append(local[i] == '\\' && i + 1 < local.Length - 1 ? local[++i] : local[i]);
        }

        return unquoted.Append('@').Append(domain).ToString();
    }

    private void ReadSender(IList<Header> fields, HeaderId sender, HeaderId from)
    {
        foreach (var id in (ReadOnlySpan<HeaderId>)[sender, from])
        {
            foreach (var field in fields)
            {
                if (field.Id != id)
                {
                    continue;
                }

                SenderFieldList.Add(field);
                if (ReversePath is not null || UnreadableSenderField is not null)
                {
                    continue;
                }

                if (!TryParse(field, out var list))
                {
                    UnreadableSenderField = field;
                }
                else if (FirstMailbox(list) is { } mailbox)
                {
                    var written = new WrittenText(field);
                    ReversePath = written.AsWritten(mailbox);
                }
            }
        }
    }

    private void ReadRecipients(IList<Header> fields, HeaderId[] ids)
    {
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var field in fields)
        {
            if (Array.IndexOf(ids, field.Id) < 0)
            {
                continue;
            }

            RecipientFieldList.Add(field);
            if (!TryParse(field, out var list))
            {
                UnreadableRecipientField ??= field;
                continue;
            }

            var written = new WrittenText(field);
            foreach (var mailbox in list.Mailboxes)
            {
                if (!string.IsNullOrEmpty(mailbox.Address) && written.AsWritten(mailbox) is var address && seen.Add(SameMailboxKey(address)))
                {
                    RecipientList.Add(address);
                }
            }
        }
    }

    /// <summary>The field's address list; an empty field, or <c>&lt;&gt;</c> (the null path, no mailbox), is an empty list.</summary>
    private static bool TryParse(Header field, out InternetAddressList list)
    {
        var value = field.RawValue.AsSpan().Trim(" \t\r\n"u8);
        if (value.IsEmpty || value.SequenceEqual("<>"u8))
        {
            list = [];
            return true;
        }

        var parsed = InternetAddressList.TryParse(ParserOptions.Default, field.RawValue, out var addresses);
        list = parsed ? addresses! : [];
        return parsed;
    }

    private static MailboxAddress? FirstMailbox(InternetAddressList list)
    {
        foreach (var mailbox in list.Mailboxes)
        {
            if (!string.IsNullOrEmpty(mailbox.Address))
            {
                return mailbox;
            }
        }

        return null;
    }

    /// <summary>
    /// The newest block of <c>Resent-*</c> fields when the message holds more than one (<c>Resent-From</c> or
    /// <c>Resent-Date</c>, which every block has, appears twice; RFC 5322 allows each field once per block): from the
    /// first <c>Resent-*</c> field to the first field that is not one (blocks sit under the trace fields of their hops),
    /// or to a <c>Resent-*</c> field the block already has. <see langword="null"/> when there is one block: every field
    /// counts then (fields added in code are appended, apart from each other). Two blocks written next to each other,
    /// the older one with a field the newer lacks before one it repeats, cannot be told apart by their fields: that
    /// field is taken into the newer block.
    /// </summary>
    private static List<Header>? NewestResentBlock(HeaderList headers)
    {
        var seen = new HashSet<HeaderId>();
        var repeated = false;
        foreach (var header in headers)
        {
            repeated |= header.Id is HeaderId.ResentFrom or HeaderId.ResentDate && !seen.Add(header.Id);
        }

        if (!repeated)
        {
            return null;
        }

        var block = new List<Header>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var header in headers)
        {
            // Any Resent-* field: RFC 5322's, RFC 822's Resent-Reply-To, or one of a program's own.
            var isResent = header.Field.StartsWith("Resent-", StringComparison.OrdinalIgnoreCase);
            if (block.Count == 0 && !isResent)
            {
                continue;
            }

            if (!isResent || !names.Add(header.Field))
            {
                break;
            }

            block.Add(header);
        }

        return block;
    }

    /// <summary>
    /// The address of a mailbox with its domain in the form its field holds it. MimeKit decodes an A-label domain
    /// (<c>xn--bcher-kva.example</c>) to Unicode in <see cref="MailboxAddress.Address"/>: an address written all in ASCII
    /// went as one nobody wrote, which needs SMTPUTF8 (RFC 6531) on a server that offers it and makes the message one a
    /// relay without SMTPUTF8 must refuse. A parsed field (<see cref="Header.Offset"/> set, unchanged since) holds the
    /// text as written; a field built or changed in code holds what MimeKit wrote (A-labels always), so the form written
    /// there is lost and the address goes as MimeKit gives it. One per field: its text is decoded once, and each mailbox
    /// (in the order written) is looked for after the previous one's, so that a field of thousands of such mailboxes
    /// is read in linear time, not decoded and searched again from its start for each.
    /// </summary>
    private sealed class WrittenText(Header field)
    {
        private string? _raw;
        private int _from;

        public string AsWritten(MailboxAddress mailbox)
        {
            var address = mailbox.Address;
            var at = address.LastIndexOf('@');
            if (at < 0 || IsAscii(address.AsSpan(at + 1)) || field.Offset is null)
            {
                return address;
            }

            string mailboxInALabels;
            try
            {
                mailboxInALabels = string.Concat(address.AsSpan(0, at + 1), Idn.GetAscii(address[(at + 1)..]));
            }
            catch (ArgumentException)
            {
                return address;
            }

            _raw ??= Encoding.UTF8.GetString(field.RawValue);
            var i = Find(_raw, mailboxInALabels, _from, _raw.Length);
            if (i < 0 && _from > 0)
            {
                i = Find(_raw, mailboxInALabels, 0, Math.Min(_raw.Length, _from + mailboxInALabels.Length - 1)); // written in an unusual way earlier (a comment inside)
            }

            if (i < 0)
            {
                return address;
            }

            _from = Math.Max(_from, i + mailboxInALabels.Length);
            return string.Concat(address.AsSpan(0, at), _raw.AsSpan(i + at, mailboxInALabels.Length - at));
        }

        /// <summary>The first whole occurrence (not the end of a longer local part or the start of a longer domain) starting in [from, to).</summary>
        private static int Find(string raw, string mailbox, int from, int to)
        {
            for (var i = raw.IndexOf(mailbox, from, StringComparison.OrdinalIgnoreCase); i >= 0 && i < to; i = raw.IndexOf(mailbox, i + 1, StringComparison.OrdinalIgnoreCase))
            {
                var end = i + mailbox.Length;
                if ((end == raw.Length || !IsAddressChar(raw[end])) && (i == 0 || !IsAddressChar(raw[i - 1])))
                {
                    return i;
                }
            }

            return -1;
        }
    }

    private static bool IsAddressChar(char c) => char.IsAsciiLetterOrDigit(c) || c > '\u007F' || "!#$%&'*+-/=?^_`{|}~.".Contains(c, StringComparison.Ordinal);

    private static bool IsAscii(ReadOnlySpan<char> text) => !text.ContainsAnyExceptInRange('\0', '\u007F');
}
