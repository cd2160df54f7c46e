using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// Session 13: <c>AddHealthCheck()</c> called twice for one sender (a shared module and Program.cs, as
/// <c>AddMailPipe</c> and <c>AddStandardResilience</c> may be) registered two checks named <c>mailpipe</c>, and every
/// health request then failed with "Duplicate health checks were registered with the name(s): mailpipe" (a 500 from
/// /health), at run time, not at start-up. The last call's registration now replaces the first.
/// </summary>
public sealed class HealthCheckTwiceTests
{
    [Fact]
    public async Task AddHealthCheck_twice_for_one_sender_is_one_check_with_the_last_calls_settings()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.Port = Support.TestServers.UnusedPort(); o.TlsMode = SmtpTlsMode.None; }).AddHealthCheck(tags: ["live"]);
        services.AddMailPipe(o => o.Pool.MaxConnections = 2).AddHealthCheck(tags: ["ready"]);
        services.AddHealthChecks().AddCheck("other", () => HealthCheckResult.Healthy());
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Entries.Keys.Should().BeEquivalentTo("mailpipe", "other");
        report.Entries["mailpipe"].Tags.Should().BeEquivalentTo("mailpipe", "smtp", "ready");
    }
}
