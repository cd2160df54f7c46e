using System.Buffers;
using System.Runtime.CompilerServices;
using System.Text;
using SmtpServer;
using SmtpServer.Mail;

namespace MailPipe.Cli;

/// <summary>
/// The mailboxes of the paths the server took, as the client wrote them, where SmtpServer's own reading differs.
/// SmtpServer decodes a path's domain as ASCII, each octet above 127 a '?' (<c>jöran@b??cher.example</c>, RFC 6531),
/// and unescapes a quoted local part as a .NET regular expression would (<c>"\u0041dmin"</c> became <c>Admin</c>,
/// <c>"a\tb"</c> a tab), and keeps no other copy. While a MAIL or RCPT command runs, its line is still known
/// (<see cref="ReplyCoalescingPipe.LastRawCommand"/>): the mailbox filter calls <see cref="Remember"/>, which takes the
/// mailbox from that line (UTF-8), and the message store prints and reports <see cref="AsSent"/>.
/// </summary>
internal static class ReceivedMailboxes
{
    /// <summary>The mailbox text of each mailbox read from a raw line; an entry lives as long as its mailbox.</summary>
    private static readonly ConditionalWeakTable<IMailbox, string> Mailboxes = [];

    /// <summary>Keeps the mailbox as the client wrote it, for a mailbox SmtpServer has just parsed from the command being run, when that line held non-ASCII octets or a backslash.</summary>
    /// <param name="context">The session.</param>
    /// <param name="mailbox">The command's mailbox (MAIL's reverse-path or RCPT's forward-path).</param>
    public static void Remember(ISessionContext context, IMailbox? mailbox)
    {
        if (mailbox?.Host is not { } host || context.Pipe is not ReplyCoalescingPipe { LastRawCommand: { } line })
        {
            return;
        }

        var postmaster = PostmasterPathEnd(new ReadOnlySequence<byte>(line));
        if (postmaster >= 0)
        {
            // RCPT TO:<Postmaster>, given to SmtpServer with a domain it would otherwise refuse: the local part as written.
            if (host == PostmasterDomain)
            {
                Mailboxes.AddOrUpdate(mailbox, Encoding.ASCII.GetString(line, postmaster - Postmaster.Length, Postmaster.Length));
            }

            return;
        }

        if (MailboxOf(line) is not var (local, domain))
        {
            return;
        }

        // The same domain octets as SmtpServer's (a '?' where it could not decode one, nothing else different): the
        // path of this command, not of another line.
        if (Encoding.ASCII.GetString(domain) == host)
        {
            Mailboxes.AddOrUpdate(mailbox, Encoding.UTF8.GetString(local) + "@" + Encoding.UTF8.GetString(domain));
        }
    }

    /// <summary>The mailbox as the client wrote it (local part quoted as sent), when <see cref="Remember"/> kept it.</summary>
    /// <param name="mailbox">A mailbox of the transaction.</param>
    /// <returns>The mailbox, or <see langword="null"/> when SmtpServer's reading is the client's.</returns>
    public static string? AsSent(IMailbox mailbox) => Mailboxes.TryGetValue(mailbox, out var text) ? text : null;

    /// <summary>
    /// The domain SmtpServer is given for <c>RCPT TO:&lt;Postmaster&gt;</c> (RFC 5321 §4.5.1: no domain), whose parser
    /// wants one; the mailbox is then remembered and printed as the client wrote it. A reserved name (RFC 2606).
    /// </summary>
    public const string PostmasterDomain = "postmaster.mailpipe.invalid";

    /// <summary>The octets of <see cref="PostmasterDomain"/>.</summary>
    public static ReadOnlySpan<byte> PostmasterDomainBytes => "postmaster.mailpipe.invalid"u8;

    private const string Postmaster = "postmaster";

    /// <summary>
    /// Where the <c>&gt;</c> of a <c>RCPT TO:&lt;Postmaster&gt;</c> line is (the reserved mailbox without a domain,
    /// any case, RFC 5321 §4.1.1.3; spaces after the colon as SmtpServer takes them; parameters may follow).
    /// </summary>
    /// <param name="line">The command line, without its line ending.</param>
    /// <returns>The offset of the closing angle bracket, or -1 when the line is no such command.</returns>
    internal static int PostmasterPathEnd(ReadOnlySequence<byte> line)
    {
        const int Longest = 256;
        if (line.Length < "RCPT TO:<postmaster>".Length || line.Length > Longest)
        {
            return -1;
        }

        Span<byte> text = stackalloc byte[Longest];
        line.CopyTo(text);
        text = text[..(int)line.Length];
        if (!Ascii.EqualsIgnoreCase(text[..8], "RCPT TO:"u8))
        {
            return -1;
        }

        var path = 8;
        while (path < text.Length && text[path] == (byte)' ')
        {
            path++;
        }

        var end = path + 1 + Postmaster.Length;
        return end < text.Length && text[path] == (byte)'<' && text[end] == (byte)'>'
            && Ascii.EqualsIgnoreCase(text[(path + 1)..end], "postmaster"u8) ? end : -1;
    }

    /// <summary>
    /// The local part and domain octets of the path in a <c>MAIL FROM:</c> or <c>RCPT TO:</c> line, a source route
    /// (<c>@relay:</c>) left out: the domain after the path's last '@' up to its closing '>', a quoted local part (which
    /// may hold '@' and '>') skipped as a quoted string.
    /// </summary>
    /// <param name="line">The command line.</param>
    /// <returns>The two parts, or <see langword="null"/> when the line holds no such path.</returns>
    internal static (byte[] Local, byte[] Domain)? MailboxOf(ReadOnlySpan<byte> line)
    {
        var colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            return null;
        }

        var path = line[(colon + 1)..].TrimStart((byte)' ');
        if (path.IsEmpty || path[0] != (byte)'<')
        {
            return null;
        }

        var quoted = false;
        var start = 1;
        var at = -1;
        for (var i = 1; i < path.Length; i++)
        {
            var c = path[i];
            if (quoted)
            {
                if (c == (byte)'\\')
                {
                    i++;
                }
                else if (c == (byte)'"')
                {
                    quoted = false;
                }
            }
            else if (c == (byte)'"')
            {
                quoted = true;
            }
            else if (c == (byte)'@')
            {
                at = i;
            }
            else if (c == (byte)':' && start == 1 && path[1] == (byte)'@')
            {
                // The end of a source route (RFC 5321 §4.1.2 A-d-l): the mailbox starts after it.
                start = i + 1;
                at = -1;
            }
            else if (c == (byte)'>')
            {
                return at <= start ? null : (path[start..at].ToArray(), path[(at + 1)..i].ToArray());
            }
        }

        return null;
    }
}
