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
        if (mailbox?.Host is not { } host || context.Pipe is not ReplyCoalescingPipe { LastRawCommand: { } line }
            || MailboxOf(line) is not var (local, domain))
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
