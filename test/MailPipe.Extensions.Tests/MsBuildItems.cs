using System.Diagnostics;
using System.Reflection;
using System.Text.Json;

namespace MailPipe.Extensions.Tests;

/// <summary>The items of a project as MSBuild evaluates them (<c>dotnet msbuild -getItem</c>), after a target when one is given; no build.</summary>
internal static class MsBuildItems
{
    /// <summary>The repository's root folder (the test project's <c>RepositoryRoot</c> metadata).</summary>
    public static string RepositoryRoot { get; } = typeof(MsBuildItems).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "RepositoryRoot").Value!;

    /// <summary>The shipped projects (<c>src/**/*.csproj</c>), relative to <see cref="RepositoryRoot"/>, in ordinal order.</summary>
    public static IEnumerable<string> ShippedProjects() =>
        Directory.GetFiles(Path.Combine(RepositoryRoot, "src"), "*.csproj", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(p => Path.GetRelativePath(RepositoryRoot, p));

    /// <summary>Runs <c>dotnet msbuild <paramref name="project"/> -getItem:<paramref name="item"/></c> in Release.</summary>
    /// <param name="project">The project's full path.</param>
    /// <param name="item">The item type.</param>
    /// <param name="target">A target to run first, or <see langword="null"/> for the evaluation alone.</param>
    /// <returns>Each item's metadata as JSON.</returns>
    public static async Task<List<JsonElement>> GetAsync(string project, string item, string? target = null)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[] { "msbuild", project, $"-getItem:{item}", "-p:Configuration=Release", "-nologo" })
        {
            start.ArgumentList.Add(argument);
        }

        if (target is not null)
        {
            start.ArgumentList.Add($"-t:{target}");
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
        return json.RootElement.GetProperty("Items").TryGetProperty(item, out var items)
            ? [.. items.EnumerateArray().Select(i => i.Clone())]
            : [];
    }
}
