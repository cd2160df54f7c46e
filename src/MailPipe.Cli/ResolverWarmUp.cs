using System.Net;
using System.Net.Sockets;

namespace MailPipe.Cli;

/// <summary>
/// Starts, in the background, the host name lookup that MailPipe's default EHLO name makes after connect
/// (<see cref="AsyncSmtpSession.GetDefaultClientDomainAsync"/>: this machine's name, and its canonical name from the
/// resolver when the name has no dot). The resolver's first call in a process loads its modules and reads its files
/// (≈ 25 ms here); made while the message files are read, it no longer stands between the server's greeting and EHLO.
/// MailPipe still makes its own lookup and chooses the name; this one only warms the resolver, and its result is unused.
/// </summary>
internal static class ResolverWarmUp
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    /// <summary>Starts the lookup (once per process is enough; a second call only repeats it) and returns at once.</summary>
    public static void Start() => _ = Task.Run(LookUpAsync);

    private static async Task LookUpAsync()
    {
        try
        {
            var hostName = Dns.GetHostName();
            if (!hostName.Contains('.', StringComparison.Ordinal))
            {
                using var limit = new CancellationTokenSource(Limit);
                await Dns.GetHostEntryAsync(hostName, AddressFamily.Unspecified, limit.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ArgumentException)
        {
            // Only a warm-up: MailPipe's own lookup decides.
        }
    }
}
