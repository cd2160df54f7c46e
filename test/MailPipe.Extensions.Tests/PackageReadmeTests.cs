namespace MailPipe.Extensions.Tests;

/// <summary>
/// Every shipped project packs exactly one README.md at the package root (its own when it has one), as
/// <c>dotnet pack -c Release -o artifacts</c> in the README promises. Two items for the same package path make NuGet
/// stop the pack with NU5118 (a warning, an error under TreatWarningsAsErrors): MailPipe.MimeKit and MailPipe.Cli
/// added their README a second time after build/Common.props started packing each project's own, and neither package
/// was made. Checked by MSBuild's evaluation of the project (no build).
/// </summary>
public sealed class PackageReadmeTests
{
    public static TheoryData<string> ShippedProjects() => [.. MsBuildItems.ShippedProjects()];

    [Theory]
    [MemberData(nameof(ShippedProjects))]
    public async Task Each_shipped_project_packs_one_readme_its_own_when_it_has_one(string project)
    {
        var items = await PackedNoneItemsAsync(Path.Combine(RepositoryRoot, project));

        var readmes = items.Where(i => PackagedName(i.PackagePath, i.FullPath).Equals("README.md", StringComparison.OrdinalIgnoreCase)).ToList();
        readmes.Should().ContainSingle("NuGet refuses a second file at the same package path (NU5118)");
        var own = Path.Combine(Path.GetDirectoryName(Path.Combine(RepositoryRoot, project))!, "README.md");
        Path.GetFullPath(readmes[0].FullPath).Should().Be(File.Exists(own) ? Path.GetFullPath(own) : Path.GetFullPath(Path.Combine(RepositoryRoot, "README.md")));
    }

    /// <summary>
    /// The packed README is what nuget.org shows, away from the repository: a relative link there leads nowhere.
    /// MailPipe.Cli's README linked <c>../../benchmarks/README.md#...</c> (fine on GitHub, dead on the package's page).
    /// </summary>
    [Theory]
    [MemberData(nameof(ShippedProjects))]
    public async Task Each_packed_readme_links_only_to_absolute_addresses_or_its_own_headings(string project)
    {
        var items = await PackedNoneItemsAsync(Path.Combine(RepositoryRoot, project));
        var readme = items.Single(i => PackagedName(i.PackagePath, i.FullPath).Equals("README.md", StringComparison.OrdinalIgnoreCase)).FullPath;

        var targets = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(readme), @"\]\((?<target>[^)\s]+)\)")
            .Select(m => m.Groups["target"].Value).ToList();

        targets.Should().OnlyContain(
            t => t.StartsWith("https://", StringComparison.Ordinal) || t.StartsWith('#'),
            "{0} is shown on nuget.org, where a relative link has no repository to resolve against", readme);
    }

    private static string RepositoryRoot => MsBuildItems.RepositoryRoot;

    /// <summary>The name a packed item gets at the package root: its PackagePath, or the file's name when the path is a folder.</summary>
    private static string PackagedName(string packagePath, string fullPath)
    {
        var path = packagePath.Replace('\\', '/').TrimStart('/');
        return path.Length == 0 || path.EndsWith('/') ? Path.GetFileName(fullPath) : path;
    }

    private static async Task<List<(string FullPath, string PackagePath)>> PackedNoneItemsAsync(string project) =>
        [.. (await MsBuildItems.GetAsync(project, "None"))
            .Where(i => i.TryGetProperty("Pack", out var pack) && string.Equals(pack.GetString(), "true", StringComparison.OrdinalIgnoreCase))
            .Select(i => (i.GetProperty("FullPath").GetString()!, i.TryGetProperty("PackagePath", out var path) ? path.GetString() ?? string.Empty : string.Empty))];
}
