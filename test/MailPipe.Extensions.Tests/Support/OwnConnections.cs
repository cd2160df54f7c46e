using System.Globalization;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>
/// Counts this process's TCP connections to a loopback port from the kernel's tables (/proc/net/tcp): sockets of
/// this process (its /proc/self/fd links) that are established or connecting to that port. Independent of the pool's
/// own bookkeeping.
/// </summary>
public static class OwnConnections
{
    public static int Count(int remotePort)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    inodes.Add(target[8..^1]);
                }
            }
            catch (IOException)
            {
                // Closed while we looked.
            }
        }

        var count = 0;
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table))
            {
                continue;
            }

            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10)
                {
                    continue;
                }

                var remote = fields[2];
                var port = int.Parse(remote[(remote.IndexOf(':', StringComparison.Ordinal) + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

                // 01 ESTABLISHED, 02 SYN_SENT: a connection the server counts (or is about to).
                if (port == remotePort && fields[3] is "01" or "02" && inodes.Contains(fields[9]))
                {
                    count++;
                }
            }
        }

        return count;
    }
}
