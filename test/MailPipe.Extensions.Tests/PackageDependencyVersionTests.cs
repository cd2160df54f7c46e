using System.Xml.Linq;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// A package that calls internals of a sibling package (the sibling's <c>InternalsVisibleTo</c> names it) depends on
/// exactly the sibling's version. NuGet writes a project reference as a minimum (<c>&gt;= 0.1.0</c>):
/// MailPipe.Extensions.DependencyInjection 0.1.0 (which calls <c>SmtpSender.CheckConnectionAsync</c>, internal) let an
/// application take a later MailPipe alone and meet a <c>MissingMethodException</c> at run time; so did
/// MailPipe.Resilience with MailPipe and MailPipe.Extensions.DependencyInjection. Checked by MSBuild's pack target that
/// computes the versions written into the .nuspec (no build, no pack).
/// </summary>
public sealed class PackageDependencyVersionTests
{
    [Fact]
    public async Task A_package_that_calls_a_siblings_internals_depends_on_exactly_its_version()
    {
        var checkedDependencies = new List<string>();
        foreach (var project in MsBuildItems.ShippedProjects().Select(p => Path.Combine(MsBuildItems.RepositoryRoot, p)))
        {
            if (Items(project, "PackAsTool").Any(v => string.Equals(v, "true", StringComparison.OrdinalIgnoreCase)))
            {
                continue; // A .NET tool carries its dependencies inside: its .nuspec lists none.
            }

            var name = Path.GetFileNameWithoutExtension(project);
            foreach (var reference in await MsBuildItems.GetAsync(project, "_ProjectReferencesWithVersions", "_GetProjectReferenceVersions"))
            {
                var sibling = reference.GetProperty("Identity").GetString()!;
                if (!XDocument.Load(sibling).Descendants("InternalsVisibleTo").Any(e => (string?)e.Attribute("Include") == name))
                {
                    continue;
                }

                var version = reference.GetProperty("ProjectVersion").GetString()!;
                version.Should().MatchRegex(@"^\[[^,\]]+\]$", "{0} calls internals of {1}: another version of it breaks at run time", name, Path.GetFileNameWithoutExtension(sibling));
                checkedDependencies.Add($"{name} -> {Path.GetFileNameWithoutExtension(sibling)}");
            }
        }

        checkedDependencies.Should().Contain("MailPipe.Extensions.DependencyInjection -> MailPipe")
            .And.Contain("MailPipe.Resilience -> MailPipe")
            .And.Contain("MailPipe.Resilience -> MailPipe.Extensions.DependencyInjection");
    }

    private static IEnumerable<string> Items(string project, string element) =>
        XDocument.Load(project).Descendants(element).Select(e => e.Value.Trim());
}
