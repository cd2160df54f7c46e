using MailPipe.Tests.Shared;

namespace MailPipe.Tests.Robustness;

/// <summary>SECURITY.md's results table must match the suites: regenerate it with <c>bash build/security-results.sh</c> after adding or removing cases.</summary>
public class SecurityResultsTableTests
{
    [Fact]
    public void The_committed_results_table_counts_the_cases_the_unit_suites_declare()
    {
        var committed = SecurityResultsTable.CommittedCases("MailPipe.Tests");
        var suites = typeof(SecurityResultsTableTests).Assembly.GetTypes()
            .Where(t => t.Namespace == "MailPipe.Tests.Robustness" && t.IsPublic && t != typeof(SecurityResultsTableTests) && SecurityResultsTable.DeclaredCases(t) > 0)
            .ToDictionary(t => t.Name, SecurityResultsTable.DeclaredCases);

        committed.Should().BeEquivalentTo(suites, "SECURITY.md's table is regenerated from the suites (bash build/security-results.sh)");
    }
}
