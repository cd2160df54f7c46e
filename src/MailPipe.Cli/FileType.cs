using System.Runtime.InteropServices;

namespace MailPipe.Cli;

/// <summary>
/// What kind of file a path names, where that matters: opening a FIFO (named pipe) for reading waits until something
/// opens it for writing, so a FIFO named <c>*.eml</c> in a directory given to <c>mailpipe send</c> stopped the whole
/// batch. .NET has no public call that tells a FIFO, a socket or a device from a regular file without opening it, so on
/// Linux this asks the kernel (<c>statx</c>, glibc 2.28 or later, whose buffer has the same layout on every
/// architecture).
/// </summary>
internal static class FileType
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int StatxBufferSize = 256;
    private const int ModeOffset = 28;

    /// <summary>What <paramref name="path"/> is when it is not a regular file (following symbolic links): "a FIFO (named pipe)", "a socket", "a character device", "a block device" or "a directory".</summary>
    /// <param name="path">The path.</param>
    /// <returns>The kind, or <see langword="null"/> for a regular file, a path that cannot be looked at (opening it will say why), or a system other than Linux.</returns>
    public static string? NotRegular(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var buffer = new byte[StatxBufferSize];
        try
        {
            // The path as C wants it: UTF-8, NUL-terminated (.NET names files in UTF-8 on Linux).
            var name = new byte[System.Text.Encoding.UTF8.GetByteCount(path) + 1];
            System.Text.Encoding.UTF8.GetBytes(path, name);
            if (NativeMethods.Statx(AtFdCwd, name, 0, StatxType, buffer) != 0)
            {
                return null;
            }
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }

        return (BitConverter.ToUInt16(buffer, ModeOffset) & 0xF000) switch
        {
            0x1000 => "a FIFO (named pipe)",
            0x2000 => "a character device",
            0x4000 => "a directory",
            0x6000 => "a block device",
            0xC000 => "a socket",
            _ => null,
        };
    }

    private static class NativeMethods
    {
        /// <summary><c>int statx(int dirfd, const char *pathname, int flags, unsigned int mask, struct statx *statxbuf)</c> (Linux 4.11, glibc 2.28).</summary>
        [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Statx(int directory, byte[] path, int flags, uint mask, [Out] byte[] buffer);
    }
}
