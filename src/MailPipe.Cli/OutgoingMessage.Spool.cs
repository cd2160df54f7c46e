namespace MailPipe.Cli;

/// <summary>Messages read from a pipe (standard input, a FIFO): spooled to a private temporary file beyond <see cref="SmallFileLimit"/>.</summary>
internal sealed partial class OutgoingMessage
{
    /// <summary>The longest message <see cref="FromPipe"/> takes: 4 GiB (settable for tests).</summary>
    internal static long PipeLimit { get; set; } = 4L * 1024 * 1024 * 1024;

    /// <summary>The temporary files of <see cref="FromPipe"/> not deleted yet.</summary>
    private static readonly HashSet<string> Spools = new(StringComparer.Ordinal);

    /// <summary>
    /// A message read from a pipe to its end (standard input, a FIFO, a process substitution): held in memory up to
    /// <see cref="SmallFileLimit"/>; a longer one is copied to a temporary file (readable by this user only, deleted
    /// with the message) and streamed from there, as a large file is. Held in memory, such a message took several
    /// times its size (a growing buffer, then its copy: 6 GB for 2 GB) and one over 2 GiB could not be read at all.
    /// </summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="name">The file name, or <c>-</c>.</param>
    /// <param name="input">The pipe, read to its end (not disposed).</param>
    /// <param name="defaults">The envelope options and <c>--header</c> fields.</param>
    /// <returns>The message, with <see cref="InputError"/> set when it cannot be sent.</returns>
    /// <exception cref="IOException">The pipe or the temporary file failed.</exception>
    public static OutgoingMessage FromPipe(int index, string name, Stream input, MessageDefaults defaults)
    {
        ArgumentNullException.ThrowIfNull(input);
        var head = new byte[SmallFileLimit + 1];
        var length = input.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (length <= SmallFileLimit)
        {
            return FromBytes(index, name, head.AsSpan(0, length).ToArray(), defaults);
        }

        var spool = Path.Combine(Path.GetTempPath(), $"mailpipe-{Environment.ProcessId}-{Guid.NewGuid():N}.eml");
        lock (Spools)
        {
            Spools.Add(spool);
        }

        try
        {
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read | FileShare.Delete };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            }

            using (var file = new FileStream(spool, options))
            {
                file.Write(head);
                var buffer = new byte[81920];
                long total = head.Length;
                int read;
                while ((read = input.Read(buffer)) > 0)
                {
                    total += read;
                    if (total > PipeLimit)
                    {
                        // A pipe that never ends (yes |, < /dev/zero) must not fill the temporary folder (a tmpfs: memory).
                        throw new IOException($"it gives more than {PipeLimit / (1024 * 1024)} MiB, the most mailpipe takes from a pipe (a message that large goes as a file)");
                    }

                    file.Write(buffer, 0, read);
                }
            }

            var message = LoadFile(index, spool, name, defaults);
            message._spool = spool;
            return message;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            DeleteSpool(spool);
            throw;
        }
    }

    /// <summary>
    /// Deletes every temporary file of <see cref="FromPipe"/> still there: the run was interrupted while a pipe was
    /// being read (the read goes on, into a file no longer named; what it loads is not sent).
    /// </summary>
    public static void DeleteSpools()
    {
        string[] spools;
        lock (Spools)
        {
            spools = [.. Spools];
        }

        Array.ForEach(spools, DeleteSpool);
    }

    private static void DeleteSpool(string spool)
    {
        try
        {
            System.IO.File.Delete(spool);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left in the temporary folder.
        }

        lock (Spools)
        {
            Spools.Remove(spool);
        }
    }
}
