using System.Text.RegularExpressions;

namespace MailPipe.Tests;

/// <summary>
/// Acceptance review (session 21) of issue #9, point 2: "Counted without blank lines and XML doc comments: no file in
/// src/MailPipe over 300 lines and the AsyncSmtpSession partials under 800 lines together" (and RULES.md: every src file
/// at most 400 lines in total).
/// </summary>
public sealed partial class Acc21SourceSizeTests
{
    private static readonly string SourceRoot = Path.Combine(RepositoryRoot(), "src", "MailPipe");

    [Fact]
    public void No_file_of_the_core_has_more_than_300_counted_lines()
    {
        var tooLong = SourceFiles()
            .Select(f => (File: Path.GetRelativePath(SourceRoot, f), Lines: CountedLines(f)))
            .Where(f => f.Lines > 300)
            .Select(f => $"{f.File}: {f.Lines}");

        tooLong.Should().BeEmpty("issue #9 caps every src/MailPipe file at 300 lines without blank lines and XML doc comments");
    }

    [Fact]
    public void No_file_of_the_core_has_more_than_400_lines_in_total()
    {
        var tooLong = SourceFiles()
            .Select(f => (File: Path.GetRelativePath(SourceRoot, f), Lines: File.ReadLines(f).Count()))
            .Where(f => f.Lines > 400)
            .Select(f => $"{f.File}: {f.Lines}");

        tooLong.Should().BeEmpty();
    }

    [Fact]
    public void The_AsyncSmtpSession_partials_together_are_under_800_counted_lines()
    {
        var partials = SourceFiles().Where(f => SessionPartial().IsMatch(File.ReadAllText(f))).ToList();

        partials.Should().NotBeEmpty();
        partials.Sum(CountedLines).Should().BeLessThan(800, string.Join(", ", partials.Select(p => Path.GetFileName(p))));
    }

    [Fact]
    public void The_count_skips_blank_lines_and_XML_doc_comments_only()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["/// <summary>x</summary>", "", "   ", "// a comment counts", "class C", "{", "    /// doc", "}"]);
            CountedLines(file).Should().Be(4);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static IEnumerable<string> SourceFiles() =>
        Directory.EnumerateFiles(SourceRoot, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal));

    private static int CountedLines(string file) =>
        File.ReadLines(file).Count(l => l.Trim() is { Length: > 0 } t && !t.StartsWith("///", StringComparison.Ordinal));

    [GeneratedRegex(@"partial\s+class\s+AsyncSmtpSession\b")]
    private static partial Regex SessionPartial();

    private static string RepositoryRoot()
    {
        var directory = AppContext.BaseDirectory;
        while (directory is not null && !File.Exists(Path.Combine(directory, "MailPipe.sln")))
        {
            directory = Path.GetDirectoryName(directory);
        }

        return directory ?? throw new InvalidOperationException("MailPipe.sln not found above the test assembly.");
    }
}
