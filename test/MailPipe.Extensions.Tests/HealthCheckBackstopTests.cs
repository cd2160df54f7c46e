using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The registration's timeout is a backstop behind the check's own: the check's timeout is the one a user sees, even
/// when the first check resolves the sender slowly (a cold process), and the backstop stays within what
/// <see cref="CancellationTokenSource.CancelAfter(TimeSpan)"/> takes (CI run of stop 25: "A timeout occurred while running check.").
/// </summary>
public sealed class HealthCheckBackstopTests
{
    [Fact]
    public async Task The_checks_own_timeout_is_reported_when_the_start_of_the_check_is_slow()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start(); // connections complete in the backlog; nobody ever greets
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(new SlowOnConnectingProvider()));
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = ((IPEndPoint)listener.LocalEndpoint).Port;
            o.TlsMode = SmtpTlsMode.None;
        }).AddHealthCheck(timeout: TimeSpan.FromMilliseconds(500));
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(TimeSpan.FromSeconds(30));

        report.Status.Should().Be(HealthStatus.Unhealthy);
        report.Entries["mailpipe"].Description.Should().Contain("within 0.5 s");
    }

    [Fact]
    public async Task The_longest_timeout_accepted_gives_a_backstop_CancelAfter_takes()
    {
        var longest = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = UnusedPort();
            o.TlsMode = SmtpTlsMode.None;
        }).AddHealthCheck(timeout: longest);
        await using var provider = services.BuildServiceProvider();

        var registration = provider.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations.Single();
        registration.Timeout.Should().BeGreaterThanOrEqualTo(longest).And.BeLessThanOrEqualTo(longest);
        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync().WaitAsync(TimeSpan.FromSeconds(30));
        report.Entries["mailpipe"].Description.Should().StartWith("Opening a connection to 127.0.0.1:", "the check ran (refused), not CancelAfter's ArgumentOutOfRangeException");
    }

    /// <summary>Its logger takes 1.5 s over "Connecting to": the synchronous start of the check is slow, as on a cold, loaded machine.</summary>
    private sealed class SlowOnConnectingProvider : ILoggerProvider, ILogger
    {
        public ILogger CreateLogger(string categoryName) => this;

        public void Dispose()
        {
        }

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (formatter(state, exception).StartsWith("Connecting to", StringComparison.Ordinal))
            {
                Thread.Sleep(TimeSpan.FromMilliseconds(1500));
            }
        }
    }

    private static int UnusedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
