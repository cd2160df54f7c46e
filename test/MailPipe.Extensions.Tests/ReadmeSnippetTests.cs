using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Every C# block (<c>```csharp</c> or <c>```cs</c>) of README.md and of each NuGet README (src/*/README.md) either
/// compiles, or appears verbatim (up to indentation) in a compiled file of the samples or the tests. A block is compiled on its own as a
/// program (top-level statements) against the MailPipe assemblies and the ASP.NET Core shared framework, with the
/// global usings of an ASP.NET Core project and the few names a README takes as given (see <see cref="Ambient"/>).
/// </summary>
public sealed partial class ReadmeSnippetTests
{
    /// <summary>Names a README block may use without declaring them (a block may also declare its own of the same name).</summary>
    private const string Ambient = """
        global using static Ambient;
        public static class Ambient
        {
            public static string[] args = [];
            public static System.Threading.CancellationToken ct;
            public static Microsoft.Extensions.Logging.ILoggerFactory loggerFactory = null!;
            public static Microsoft.AspNetCore.Builder.WebApplicationBuilder builder = null!;
            public static Microsoft.Extensions.DependencyInjection.IServiceCollection services = null!;
            public static Microsoft.Extensions.Configuration.IConfiguration configuration = null!;
            public static MailPipe.AsyncSmtpSession session = null!;
            public static MailPipe.ISmtpSender sender = null!;
            public static System.Collections.Generic.IEnumerable<MailPipe.SmtpMessage> messages = null!;
            public static System.ReadOnlyMemory<byte> part1, part2;
        }
        """;

    private const string GlobalUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.IO;
        global using System.Linq;
        global using System.Net.Http;
        global using System.Net.Http.Json;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Microsoft.AspNetCore.Builder;
        global using Microsoft.AspNetCore.Hosting;
        global using Microsoft.AspNetCore.Http;
        global using Microsoft.AspNetCore.Routing;
        global using Microsoft.Extensions.Configuration;
        global using Microsoft.Extensions.DependencyInjection;
        global using Microsoft.Extensions.Hosting;
        global using Microsoft.Extensions.Logging;
        """;

    private static readonly Lazy<MetadataReference[]> References = new(() =>
    {
        // The test's own context: the .NET and ASP.NET Core shared frameworks, MailPipe and its packages (DI, MimeKit), the sample.
        _ = typeof(SmtpSender).Assembly;
        _ = typeof(Microsoft.Extensions.DependencyInjection.IMailPipeBuilder).Assembly;
        _ = typeof(MailPipe.Resilience.SmtpResiliencePredicates).Assembly;
        _ = typeof(Polly.ResiliencePipeline).Assembly;
        _ = typeof(MailPipe.MimeMessageSmtpExtensions).Assembly;
        _ = typeof(MimeKit.MimeMessage).Assembly;
        _ = typeof(MimeKit.MimeMessage).Assembly.GetReferencedAssemblies().Select(System.Reflection.Assembly.Load).ToList();
        _ = typeof(OpenTelemetry.Trace.MailPipeTracerProviderBuilderExtensions).Assembly;
        _ = typeof(OpenTelemetry.Trace.TracerProviderBuilder).Assembly;
        _ = typeof(OpenTelemetry.OpenTelemetryBuilder).Assembly;
        var paths = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator)
            .Concat(AppDomain.CurrentDomain.GetAssemblies().Where(a => !a.IsDynamic && a.Location.Length > 0).Select(a => a.Location))
            .Concat(Directory.GetFiles(AppContext.BaseDirectory, "*.dll"))
            .Distinct(StringComparer.Ordinal);
        return [.. paths.Where(File.Exists).Select(p => MetadataReference.CreateFromFile(p))];
    });

    public static TheoryData<string, int> Blocks()
    {
        var data = new TheoryData<string, int>();
        foreach (var readme in Readmes())
        {
            var count = ExtractBlocks(File.ReadAllText(Path.Combine(Root, readme))).Count;
            for (var i = 0; i < count; i++)
            {
                data.Add(readme, i);
            }
        }

        return data;
    }

    [Fact]
    public void The_READMEs_are_found_and_have_CSharp_blocks()
    {
        var readmes = Readmes();
        readmes.Should().Contain(["README.md", "src/MailPipe/README.md", "src/MailPipe.Extensions.DependencyInjection/README.md"]);
        foreach (var readme in readmes.Where(r => r != "src/MailPipe.Cli/README.md"))
        {
            ExtractBlocks(File.ReadAllText(Path.Combine(Root, readme))).Should().NotBeEmpty(readme);
        }
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void Each_CSharp_block_compiles_or_is_in_a_compiled_file(string readme, int index)
    {
        var block = ExtractBlocks(File.ReadAllText(Path.Combine(Root, readme)))[index];
        var normalized = Normalize(block);
        if (CompiledFiles.Value.Any(file => file.Contains(normalized, StringComparison.Ordinal)))
        {
            return;
        }

        var errors = Compile(block);
        errors.Should().BeEmpty($"block {index + 1} of {readme} should compile:\n{block}");
    }

    [Fact]
    public void A_block_that_does_not_compile_is_caught()
    {
        Compile("var x = new MailPipe.SmtpSender();").Should().NotBeEmpty();
        Compile("using MailPipe;\nvar envelope = new SmtpEnvelope(\"a@example.com\", \"b@example.com\");").Should().BeEmpty();
    }

    internal static List<string> ExtractBlocks(string markdown)
    {
        var blocks = new List<string>();
        foreach (Match match in FencedCSharp().Matches(markdown.Replace("\r\n", "\n", StringComparison.Ordinal)))
        {
            blocks.Add(match.Groups["code"].Value);
        }

        return blocks;
    }

    private static List<string> Compile(string block)
    {
        var options = new CSharpParseOptions(LanguageVersion.Latest);
        var trees = new[]
        {
            CSharpSyntaxTree.ParseText(block, options, path: "Snippet.cs"),
            CSharpSyntaxTree.ParseText(GlobalUsings, options, path: "GlobalUsings.cs"),
            CSharpSyntaxTree.ParseText(Ambient, options, path: "Ambient.cs"),
        };
        var compilation = CSharpCompilation.Create(
            "Snippet",
            trees,
            References.Value,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable));
        return [.. compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString())];
    }

    private static string Root => typeof(ReadmeSnippetTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "RepositoryRoot").Value!;

    private static List<string> Readmes() =>
        [
            "README.md",
            .. Directory.GetDirectories(Path.Combine(Root, "src"))
                .Where(d => File.Exists(Path.Combine(d, "README.md")))
                .Select(d => $"src/{Path.GetFileName(d)}/README.md")
                .Order(StringComparer.Ordinal),
        ];

    /// <summary>
    /// The .cs files of the samples and of the test projects (all in MailPipe.sln, compiled by the build that runs the
    /// tests), normalised as <see cref="Normalize"/> does: a README example may sit indented in a method there (as
    /// the shared-sender example of README.md does in MailPipe.Tests' ReadmeSenderExampleTests).
    /// </summary>
    private static readonly Lazy<string[]> CompiledFiles = new(() =>
        [.. new[] { "samples", "test" }
            .SelectMany(d => Directory.GetFiles(Path.Combine(Root, d), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal))
            .Select(f => Normalize(File.ReadAllText(f)))]);

    /// <summary>Verbatim up to indentation and trailing white space: every line trimmed, LF line ends.</summary>
    private static string Normalize(string code) =>
        string.Join('\n', code.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Select(l => l.Trim())).Trim('\n');

    [GeneratedRegex(@"^```(?:csharp|cs|c#)[ \t]*\n(?<code>.*?)^```[ \t]*$", RegexOptions.Multiline | RegexOptions.Singleline | RegexOptions.CultureInvariant)]
    private static partial Regex FencedCSharp();
}
