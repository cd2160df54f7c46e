using MailPipe.Tests.Shared;

namespace MailPipe.IntegrationTests.Robustness;

/// <summary>SECURITY.md's results table must match the integration suites: regenerate it with <c>bash build/security-results.sh</c>.</summary>
public class SecurityResultsTableTests
{
    [Fact]
    public void The_committed_results_table_counts_the_cases_the_integration_suites_declare()
    {
        var committed = SecurityResultsTable.CommittedCases("MailPipe.IntegrationTests");
        var suites = typeof(SecurityResultsTableTests).Assembly.GetTypes()
            .Where(t => t.Namespace == "MailPipe.IntegrationTests.Robustness" && t.IsPublic && t != typeof(SecurityResultsTableTests) && SecurityResultsTable.DeclaredCases(t) > 0)
            .ToDictionary(t => t.Name, SecurityResultsTable.DeclaredCases);

        committed.Should().BeEquivalentTo(suites, "SECURITY.md's table is regenerated from the suites (bash build/security-results.sh)");
    }
}
