namespace MailPipe.Cli;

/// <summary>
/// Turns the FILE arguments of <c>mailpipe send</c> into a list of files: a file stands for itself (a missing one is
/// reported when it is read); a directory for its <c>*.eml</c> files; a name with <c>*</c> or <c>?</c> in its last
/// part (as a shell that does not expand wildcards passes it) for the files it matches; as in a shell, names that
/// start with a dot only when the pattern does. Each expansion is sorted by name (ordinal) so that the order is the
/// same on every run. A directory or wildcard takes regular files only: a FIFO, socket or device it finds (a FIFO would
/// block the batch when opened) is listed with the reason it is not sent, and never opened.
/// </summary>
internal static class FileArguments
{
    private static readonly EnumerationOptions Matching = new()
    {
        MatchType = MatchType.Simple,
        RecurseSubdirectories = false,
        IgnoreInaccessible = true,
        AttributesToSkip = FileAttributes.Directory,
    };

    /// <summary>Expands the arguments.</summary>
    /// <param name="arguments">The FILE arguments, in order.</param>
    /// <param name="files">The files, in order.</param>
    /// <param name="error">Why the arguments cannot be used (an empty argument, a directory without <c>.eml</c> files, a pattern that matches nothing), otherwise <see langword="null"/>.</param>
    /// <returns>Whether the arguments could be expanded.</returns>
    public static bool TryExpand(IEnumerable<string> arguments, out List<string> files, out string? error) =>
        TryExpand(arguments, out files, out _, out error);

    /// <summary>Expands the arguments, and says which files a directory or wildcard found, and which of them are not regular files.</summary>
    /// <param name="arguments">The FILE arguments, in order.</param>
    /// <param name="files">The files, in order.</param>
    /// <param name="found">Each position in <paramref name="files"/> found by a directory or wildcard, with what it is when not a regular file (<see cref="FileType.NotRegular"/>), else <see langword="null"/>. A file named on its own is not in it: a FIFO or <c>&lt;(command)</c> given by name is read to its end.</param>
    /// <param name="error">Why the arguments cannot be used (an empty argument, a directory without <c>.eml</c> files, a pattern that matches nothing), otherwise <see langword="null"/>.</param>
    /// <returns>Whether the arguments could be expanded.</returns>
    public static bool TryExpand(IEnumerable<string> arguments, out List<string> files, out Dictionary<int, string?> found, out string? error)
    {
        files = [];
        found = [];
        error = null;
        foreach (var argument in arguments)
        {
            if (argument.Length == 0)
            {
                // A shell variable that was not set ("$MESSAGE"): no file has that name, and opening it would throw.
                error = "a FILE argument is empty (''): give a file, a directory, a wildcard, or - for standard input";
                return false;
            }

            if (Directory.Exists(argument))
            {
                var matched = Find(argument, "*.eml");
                if (matched.Length == 0)
                {
                    error = $"the directory {argument} holds no .eml file";
                    return false;
                }

                AddFound(files, found, matched);
                continue;
            }

            var name = Path.GetFileName(argument);
            var directory = Path.GetDirectoryName(argument);
            if (directory is not null && directory.AsSpan().IndexOfAny('*', '?') >= 0)
            {
                error = $"{argument}: wildcards are only understood in the file name, not in the directories";
                return false;
            }

            if (name.AsSpan().IndexOfAny('*', '?') < 0)
            {
                files.Add(argument);
                continue;
            }

            var directoryToSearch = string.IsNullOrEmpty(directory) ? "." : directory;
            var matches = Directory.Exists(directoryToSearch) ? Find(directoryToSearch, name) : [];
            if (matches.Length == 0)
            {
                error = $"no file matches {argument}";
                return false;
            }

            // Keep the paths as the user wrote them ("*.eml" gives "a.eml", not "./a.eml").
            AddFound(files, found, string.IsNullOrEmpty(directory) ? matches.Select(m => Path.GetFileName(m)) : matches);
        }

        return true;
    }

    private static void AddFound(List<string> files, Dictionary<int, string?> found, IEnumerable<string> matched)
    {
        foreach (var file in matched)
        {
            found[files.Count] = FileType.NotRegular(file);
            files.Add(file);
        }
    }

    /// <summary>The files of <paramref name="directory"/> that <paramref name="pattern"/> matches, sorted; as in a shell, a name starting with a dot only when the pattern does (macOS's <c>._x.eml</c> metadata files are not messages).</summary>
    private static string[] Find(string directory, string pattern)
    {
        var found = Directory.GetFiles(directory, pattern, Matching);
        if (!pattern.StartsWith('.'))
        {
            found = Array.FindAll(found, static f => !Path.GetFileName(f.AsSpan()).StartsWith('.'));
        }

        Array.Sort(found, StringComparer.Ordinal);
        return found;
    }
}
