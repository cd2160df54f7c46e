using System.Runtime.CompilerServices;
using System.Text;
using SmtpServer;
using SmtpServer.Mail;

namespace MailPipe.Cli;

/// <summary>
/// The UTF-8 domains (RFC 6531) of the paths the server took. SmtpServer decodes a path's local part as UTF-8 but its
/// domain as ASCII, each octet above 127 a '?' (<c>jöran@b??cher.example</c>), and keeps no other copy. While a MAIL or
/// RCPT command runs, its line is still known (<see cref="ReplyCoalescingPipe.LastNonAsciiCommand"/>): the mailbox
/// filter calls <see cref="Remember"/>, which takes the domain from that line as UTF-8, and the message store prints
/// and reports <see cref="Host"/>.
/// </summary>
internal static class InternationalDomains
{
    /// <summary>The domain of each mailbox whose domain SmtpServer could not decode; an entry lives as long as its mailbox.</summary>
    private static readonly ConditionalWeakTable<IMailbox, string> Domains = [];

    /// <summary>Keeps the UTF-8 domain of a mailbox SmtpServer has just parsed from the command being run, when its domain was not ASCII.</summary>
    /// <param name="context">The session.</param>
    /// <param name="mailbox">The command's mailbox (MAIL's reverse-path or RCPT's forward-path).</param>
    public static void Remember(ISessionContext context, IMailbox? mailbox)
    {
        if (mailbox?.Host is not { } host || !host.Contains('?', StringComparison.Ordinal)
            || context.Pipe is not ReplyCoalescingPipe { LastNonAsciiCommand: { } line }
            || DomainOf(line) is not { } domain)
        {
            return;
        }

        // The same octets as SmtpServer's (the '?'s where they are, nothing else different): the domain of this
        // command's path, not of another line.
        if (Encoding.ASCII.GetString(domain) == host)
        {
            Domains.AddOrUpdate(mailbox, Encoding.UTF8.GetString(domain));
        }
    }

    /// <summary>The mailbox's domain: as the client sent it when it was not ASCII, else as SmtpServer parsed it.</summary>
    /// <param name="mailbox">A mailbox of the transaction.</param>
    /// <returns>The domain.</returns>
    public static string Host(IMailbox mailbox) => Domains.TryGetValue(mailbox, out var domain) ? domain : mailbox.Host;

    /// <summary>
    /// The domain octets of the path in a <c>MAIL FROM:</c> or <c>RCPT TO:</c> line: after the path's last '@' up to
    /// its closing '>', a quoted local part (which may hold '@' and '>') skipped as a quoted string.
    /// </summary>
    /// <param name="line">The command line.</param>
    /// <returns>The domain's octets, or <see langword="null"/> when the line holds no such path.</returns>
    internal static byte[]? DomainOf(ReadOnlySpan<byte> line)
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
            else if (c == (byte)'>')
            {
                return at < 0 ? null : path[(at + 1)..i].ToArray();
            }
        }

        return null;
    }
}
