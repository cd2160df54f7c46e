using System.Diagnostics;
using System.Reflection;
using System.Text.Json;

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
    public static TheoryData<string> ShippedProjects()
    {
        var data = new TheoryData<string>();
        foreach (var project in Directory.GetFiles(Path.Combine(RepositoryRoot, "src"), "*.csproj", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetRelativePath(RepositoryRoot, project));
        }

        return data;
    }

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

    private static string RepositoryRoot { get; } = typeof(PackageReadmeTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepositoryRoot").Value!;

    /// <summary>The name a packed item gets at the package root: its PackagePath, or the file's name when the path is a folder.</summary>
    private static string PackagedName(string packagePath, string fullPath)
    {
        var path = packagePath.Replace('\\', '/').TrimStart('/');
        return path.Length == 0 || path.EndsWith('/') ? Path.GetFileName(fullPath) : path;
    }

    private static async Task<List<(string FullPath, string PackagePath)>> PackedNoneItemsAsync(string project)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "msbuild", project, "-getItem:None", "-p:Configuration=Release", "-nologo" })
        {
            start.ArgumentList.Add(argument);
        }

        // The test host's own MSBuild settings (dotnet test sets some) must not steer the child's evaluation.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            start.Environment.Remove(name);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        process.ExitCode.Should().Be(0, "the evaluation of {0} failed: {1}{2}", project, await output, await error);

        using var json = JsonDocument.Parse(await output);
        return [.. json.RootElement.GetProperty("Items").GetProperty("None").EnumerateArray()
            .Where(i => i.TryGetProperty("Pack", out var pack) && string.Equals(pack.GetString(), "true", StringComparison.OrdinalIgnoreCase))
            .Select(i => (i.GetProperty("FullPath").GetString()!, i.TryGetProperty("PackagePath", out var path) ? path.GetString() ?? string.Empty : string.Empty))];
    }
}
