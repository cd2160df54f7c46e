using System.Net;
using System.Net.Sockets;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MailPipe.Extensions.Tests;

/// <summary>The health check's own timeout runs on the container's <see cref="TimeProvider"/>, as the sender's times do (breaker15).</summary>
public sealed class HealthCheckClockTests
{
    [Fact]
    public async Task The_checks_timeout_runs_on_the_containers_TimeProvider_against_a_server_that_never_greets()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(); // connections complete in the backlog; nobody ever greets
        var timeout = TimeSpan.FromMinutes(3);
        var clock = new ArmedClock(timeout);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddSingleton<TimeProvider>(clock);
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            o.TlsMode = SmtpTlsMode.None;
            o.Timeouts.Reply = TimeSpan.FromHours(2); // the greeting's wait outlasts the check
        }).AddHealthCheck(timeout: timeout);
        await using var provider = services.BuildServiceProvider();

        var check = provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        await clock.Armed.WaitAsync(TimeSpan.FromSeconds(60));
        clock.Advance(timeout + TimeSpan.FromSeconds(1));
        var report = await check.WaitAsync(TimeSpan.FromSeconds(60));

        report.Status.Should().Be(HealthStatus.Unhealthy);
        report.Entries["mailpipe"].Description.Should().Contain("within 180 s");
    }
}
