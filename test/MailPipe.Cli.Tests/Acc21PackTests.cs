using System.Diagnostics;
using System.IO.Compression;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Acceptance review (session 21) of issue #2, point 7: "dotnet pack makes a MailPipe NuGet package (README, license,
/// XML docs, symbols/SourceLink) and the mailpipe tool package". Packs the built projects (--no-build) into a temporary
/// folder and reads the packages.
/// </summary>
public sealed class Acc21PackTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("acc21-pack-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    [Fact]
    public async Task The_core_package_has_the_README_the_license_the_XML_docs_and_a_symbol_package()
    {
        await PackAsync("src/MailPipe");

        using var package = ZipFile.OpenRead(Single("MailPipe", "nupkg"));
        var entries = package.Entries.Select(e => e.FullName).ToList();
        entries.Should().Contain(["README.md", "lib/net10.0/MailPipe.dll", "lib/net10.0/MailPipe.xml"]);
        var nuspec = await ReadAsync(package, "MailPipe.nuspec");
        nuspec.Should().Contain("<readme>README.md</readme>").And.Contain("<license type=\"expression\">MIT</license>");
        (await ReadAsync(package, "README.md")).Should().Contain("MailPipe");
        (await ReadAsync(package, "lib/net10.0/MailPipe.xml")).Should().Contain("<member name=\"T:MailPipe.AsyncSmtpSession\">");

        using var symbols = ZipFile.OpenRead(Single("MailPipe", "snupkg"));
        symbols.Entries.Select(e => e.FullName).Should().Contain("lib/net10.0/MailPipe.pdb");
    }

    [Fact]
    public async Task The_cli_package_is_a_dotnet_tool_whose_command_is_mailpipe()
    {
        await PackAsync("src/MailPipe.Cli");

        using var package = ZipFile.OpenRead(Single("MailPipe.Cli", "nupkg"));
        var nuspec = await ReadAsync(package, "MailPipe.Cli.nuspec");
        nuspec.Should().Contain("<packageType name=\"DotnetTool\" />");
        var settings = await ReadAsync(package, "tools/net10.0/any/DotnetToolSettings.xml");
        settings.Should().Contain("<Command Name=\"mailpipe\" EntryPoint=\"MailPipe.Cli.dll\"");
        package.Entries.Select(e => e.FullName).Should().Contain(["README.md", "tools/net10.0/any/MailPipe.dll"]);
    }

    /// <summary>The one package <paramref name="id"/>.&lt;version&gt;.<paramref name="extension"/> in the output folder.</summary>
    private string Single(string id, string extension) =>
        Directory.GetFiles(_output, $"{id}.*.{extension}")
            .Where(f => Path.GetFileName(f) is { } name && name.Length > id.Length + 1 && char.IsAsciiDigit(name[id.Length + 1]))
            .Should().ContainSingle($"{id} {extension}").Which;

    private static async Task<string> ReadAsync(ZipArchive package, string name)
    {
        var entry = package.GetEntry(name) ?? throw new FileNotFoundException($"{name} is not in the package");
        using var reader = new StreamReader(entry.Open());
        return await reader.ReadToEndAsync();
    }

    private async Task PackAsync(string project)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = RepositoryRoot(),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // No build server or MSBuild node left behind: a node that outlives the test could hold the test run's output open.
        foreach (var argument in new[] { "pack", project, "-c", "Release", "--no-build", "--disable-build-servers", "-nodeReuse:false", "-o", _output })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(timeout.Token);
        process.ExitCode.Should().Be(0, "dotnet pack {0} failed: {1}{2}", project, await output, await error);
    }

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
