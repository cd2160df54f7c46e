using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MailPipe.Extensions.Tests;

/// <summary>Breaker probes of the health check: a server that goes away after a healthy check leaves an idle connection behind.</summary>
public sealed class HealthCheckBreakTests
{
    [Fact]
    public async Task Unhealthy_once_the_server_is_gone_although_the_pool_holds_an_idle_connection_from_the_last_check()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var proxy = new FaultProxy(TestServers.PostfixPort);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks();
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = proxy.Port;
            o.TlsMode = SmtpTlsMode.None;
        }).AddHealthCheck(timeout: TimeSpan.FromSeconds(20));
        await using var provider = services.BuildServiceProvider();
        var checks = provider.GetRequiredService<HealthCheckService>();

        (await checks.CheckHealthAsync()).Status.Should().Be(HealthStatus.Healthy);
        provider.GetRequiredService<SmtpSender>().GetStatistics().Idle.Should().Be(1);
        await proxy.DisposeAsync(); // the idle connection is closed and nothing listens any more

        var report = await checks.CheckHealthAsync();

        report.Status.Should().Be(HealthStatus.Unhealthy, report.Entries["mailpipe"].Description);
        report.Entries["mailpipe"].Description.Should().Contain("(ConnectionRefused)");
        provider.GetRequiredService<SmtpSender>().GetStatistics().Idle.Should().Be(0);
    }
}
