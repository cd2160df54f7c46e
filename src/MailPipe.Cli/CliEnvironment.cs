using System.Globalization;

namespace MailPipe.Cli;

/// <summary>What the command line gets from its process besides the arguments: standard input, and whether standard output and error are terminals.</summary>
/// <param name="OpenInput">Opens standard input (for the file argument <c>-</c>); throws <see cref="IOException"/> when there is none to read.</param>
/// <param name="OutputIsTerminal">Whether standard output is a terminal.</param>
/// <param name="ErrorIsTerminal">Whether standard error is a terminal (the progress of a batch is shown only then).</param>
internal sealed record CliEnvironment(Func<Stream> OpenInput, bool OutputIsTerminal, bool ErrorIsTerminal)
{
    /// <summary>The error of <c>-</c> when the process was started without standard input.</summary>
    public const string InputClosed = "it is closed (the process was started without one, as with 0<&-)";

    /// <summary>No standard input, and neither output a terminal: as when run in-process by tests.</summary>
    public static CliEnvironment Redirected { get; } = new(() => Stream.Null, OutputIsTerminal: false, ErrorIsTerminal: false);

    /// <summary>The process's own standard streams.</summary>
    /// <returns>The environment.</returns>
    public static CliEnvironment FromConsole() => new(
        WasClosedAtStart(0) ? static () => throw new IOException(InputClosed) : Console.OpenStandardInput,
        !Console.IsOutputRedirected,
        !Console.IsErrorRedirected);

    /// <summary>
    /// Standard output as a stream that reports a broken pipe. .NET's console stream takes EPIPE (the reader of a pipe
    /// went away: <c>| head -1</c>) for success, so that every result after that was dropped without a word. When
    /// standard output is a pipe or a socket, it is written through a <see cref="FileStream"/> on descriptor 1 instead,
    /// which throws <see cref="IOException"/> (<see cref="IsBrokenPipe"/>) there. Not for a terminal, nor for a regular
    /// file or device (a <see cref="FileStream"/> writes a seekable file at offsets of its own with <c>pwrite</c>, leaving
    /// the descriptor's offset where it was: the next writer of a shared <c>&gt;</c> file would overwrite the results),
    /// nor for a non-blocking descriptor (<c>O_NONBLOCK</c>, which a parent may set on a shared pipe: the console stream
    /// waits for it, a <see cref="FileStream"/> would fail with EAGAIN). Elsewhere than on Linux, the console stream.
    /// </summary>
    /// <returns>The stream; the caller disposes it (descriptor 1 stays open).</returns>
    public static Stream OpenStandardOutput()
    {
        const long NonBlocking = 0x800; // O_NONBLOCK, octal 04000
        if (OperatingSystem.IsLinux() && Console.IsOutputRedirected && Flags("/proc/self/fdinfo/1") is { } flags && (flags & NonBlocking) == 0)
        {
            var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0);
            if (!stream.CanSeek)
            {
                return stream;
            }

            stream.Dispose();
        }

        return Console.OpenStandardOutput();
    }

    /// <summary>Whether a write failed because the pipe (or socket) it wrote to has no reader any more (EPIPE).</summary>
    /// <param name="exception">The exception of the write.</param>
    /// <returns>Whether it is a broken pipe.</returns>
    public static bool IsBrokenPipe(Exception exception)
    {
        const int BrokenPipe = 32; // EPIPE on Linux; .NET's IOException carries the errno as its HResult
        return OperatingSystem.IsLinux() && exception is IOException { HResult: BrokenPipe };
    }

    /// <summary>Whether a standard descriptor (0, 1 or 2) was not open when the process started (see <see cref="InputWasClosedAtStart"/>).</summary>
    /// <param name="descriptor">The descriptor.</param>
    /// <returns>Whether it was closed at start.</returns>
    public static bool WasClosedAtStart(int descriptor) =>
        InputWasClosedAtStart(string.Create(CultureInfo.InvariantCulture, $"/proc/self/fdinfo/{descriptor}"));

    /// <summary>
    /// Whether descriptor 0 (or another standard one) was not open when the process started. The runtime then takes it for a descriptor of its
    /// own before Main runs (a pipe nobody writes to, on .NET 10 on Linux): reading it as standard input would wait
    /// forever. Such a descriptor was opened in this process with close-on-exec set, which an inherited standard input
    /// can never carry (the kernel closes those at exec): Linux shows it as <c>O_CLOEXEC</c> (octal 02000000) in the
    /// <c>flags</c> of <c>/proc/self/fdinfo/0</c>. Descriptor 0 missing altogether counts as closed too. Elsewhere (no
    /// such file) standard input is taken as it is.
    /// </summary>
    /// <param name="fdInfo">The descriptor's fdinfo file.</param>
    /// <returns>Whether standard input was closed at start.</returns>
    internal static bool InputWasClosedAtStart(string fdInfo)
    {
        const int CloseOnExec = 0x80000; // O_CLOEXEC, octal 02000000
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        try
        {
            return Flags(fdInfo, throwIfMissing: true) is { } flags && (flags & CloseOnExec) != 0;
        }
        catch (FileNotFoundException)
        {
            return Directory.Exists("/proc/self/fdinfo");
        }
    }

    /// <summary>The <c>flags</c> (octal) of a descriptor's fdinfo file, or <see langword="null"/> when they cannot be read.</summary>
    /// <param name="fdInfo">The descriptor's fdinfo file.</param>
    /// <param name="throwIfMissing">Whether a missing file throws <see cref="FileNotFoundException"/> rather than giving <see langword="null"/>.</param>
    /// <returns>The flags.</returns>
    private static long? Flags(string fdInfo, bool throwIfMissing = false)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(fdInfo);
        }
        catch (FileNotFoundException) when (throwIfMissing)
        {
            throw;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        foreach (var line in lines)
        {
            if (line.StartsWith("flags:", StringComparison.Ordinal))
            {
                var octal = line["flags:".Length..].Trim();
                return long.TryParse(octal, NumberStyles.None, CultureInfo.InvariantCulture, out _) ? Convert.ToInt64(octal, 8) : null;
            }
        }

        return null;
    }
}
