using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

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
    private const int AtEmptyPath = 0x1000;
    private const int OpenReadOnlyNonBlocking = 0x800 | 0x80000; // O_RDONLY | O_NONBLOCK | O_CLOEXEC (Linux, x86-64 and arm64)
    private const int LockSharedNonBlocking = 1 | 4; // LOCK_SH | LOCK_NB
    private const int WouldBlock = 11; // EWOULDBLOCK

    /// <summary>What <paramref name="path"/> is when it is not a regular file (following symbolic links): "a FIFO (named pipe)", "a socket", "a character device", "a block device" or "a directory".</summary>
    /// <param name="path">The path.</param>
    /// <returns>The kind, or <see langword="null"/> for a regular file, a path that cannot be looked at (opening it will say why), or a system other than Linux.</returns>
    public static string? NotRegular(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            return Kind(AtFdCwd, CString(path), 0);
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading as a regular file, checking what it is on the open descriptor (no
    /// window between a check and the open in which the file can be replaced by a FIFO). On Linux the open does not wait
    /// for a writer (<c>O_NONBLOCK</c>, which changes nothing for a regular file); elsewhere this is
    /// <see cref="File.OpenHandle"/>.
    /// </summary>
    /// <param name="path">The path.</param>
    /// <param name="notRegular">What the path is when it is not a regular file (as <see cref="NotRegular"/>), otherwise <see langword="null"/>.</param>
    /// <returns>The handle of a regular file, or <see langword="null"/> when <paramref name="notRegular"/> says what it is instead.</returns>
    /// <exception cref="IOException">The file cannot be opened (as <see cref="File.OpenHandle"/> says).</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be read.</exception>
    public static SafeFileHandle? OpenRegular(string path, out string? notRegular)
    {
        notRegular = null;
        int descriptor;
        try
        {
            descriptor = OperatingSystem.IsLinux() ? NativeMethods.Open(CString(path), OpenReadOnlyNonBlocking) : -1;
        }
        catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
        {
            descriptor = -1;
        }

        if (descriptor < 0)
        {
            // Not Linux, or the open failed (no such file, no permission): .NET's own open says why, in its words.
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }

        var handle = new SafeFileHandle(descriptor, ownsHandle: true);
        notRegular = Kind(descriptor, [0], AtEmptyPath);
        if (notRegular is not null)
        {
            handle.Dispose();
            return null;
        }

        // The shared lock File.OpenHandle takes for FileShare.Read: a file another process holds with FileShare.None (a
        // .NET writer still writing it) is refused as there, never read half written.
        if (NativeMethods.Flock(descriptor, LockSharedNonBlocking) != 0 && Marshal.GetLastPInvokeError() == WouldBlock)
        {
            handle.Dispose();
            throw new IOException($"The process cannot access the file '{path}' because it is being used by another process.");
        }

        return handle;
    }

    /// <summary>The path as C wants it: UTF-8, NUL-terminated (.NET names files in UTF-8 on Linux).</summary>
    private static byte[] CString(string path)
    {
        var name = new byte[System.Text.Encoding.UTF8.GetByteCount(path) + 1];
        System.Text.Encoding.UTF8.GetBytes(path, name);
        return name;
    }

    /// <summary>statx of <paramref name="name"/> relative to <paramref name="directory"/> (or of the descriptor itself with <see cref="AtEmptyPath"/>): the kind when not a regular file.</summary>
    private static string? Kind(int directory, byte[] name, int flags)
    {
        var buffer = new byte[StatxBufferSize];
        if (NativeMethods.Statx(directory, name, flags, StatxType, buffer) != 0)
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

        /// <summary><c>int open(const char *pathname, int flags)</c>.</summary>
        [DllImport("libc", EntryPoint = "open", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Open(byte[] path, int flags);

        /// <summary><c>int flock(int fd, int operation)</c>.</summary>
        [DllImport("libc", EntryPoint = "flock", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
        public static extern int Flock(int descriptor, int operation);
    }
}
