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

    [Fact]
    public async Task Two_keyed_senders_with_resilience_each_have_their_own_check_and_the_container_disposes_them_once()
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddHealthChecks();
        foreach (var key in new[] { "a", "b" })
        {
            services.AddKeyedMailPipe(key, o =>
            {
                o.Host = "127.0.0.1";
                o.Port = TestServers.UnusedPort();
                o.TlsMode = SmtpTlsMode.None;
            }).AddStandardResilience().AddHealthCheck(timeout: TimeSpan.FromSeconds(20));
        }

        var provider = services.BuildServiceProvider();
        provider.GetRequiredKeyedService<ISmtpSender>("a").Should().BeOfType<MailPipe.Resilience.ResilientSmtpSender>()
            .Which.InnerSender.Should().BeSameAs(provider.GetRequiredKeyedService<SmtpSender>("a"));
        provider.GetRequiredKeyedService<SmtpSender>("a").Should().NotBeSameAs(provider.GetRequiredKeyedService<SmtpSender>("b"));

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Entries.Keys.Should().BeEquivalentTo("mailpipe-a", "mailpipe-b");
        report.Entries.Values.Should().OnlyContain(e => e.Status == HealthStatus.Unhealthy && e.Description!.Contains("(ConnectionRefused)"));
        var sender = provider.GetRequiredKeyedService<ISmtpSender>("a");
        await provider.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        await sender.Awaiting(s => s.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("s@example.test", "r@example.test"), "Subject: x\r\n\r\nx\r\n"u8.ToArray())))
            .Should().ThrowAsync<ObjectDisposedException>();
    }

    /// <summary>
    /// The check's timeout was not checked: it was accepted, and zero made every check Unhealthy ("within 0 s") without
    /// trying, a negative one or 60 days (more than a timer takes) every check fail with an ArgumentOutOfRangeException.
    /// </summary>
    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:00.500")]
    [InlineData("60.00:00:00")]
    public void A_health_check_timeout_that_is_not_positive_or_too_long_for_a_timer_is_refused_when_it_is_added(string timeout)
    {
        var services = new ServiceCollection();
        var builder = services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.TlsMode = SmtpTlsMode.None;
        });

        FluentActions.Invoking(() => builder.AddHealthCheck(timeout: TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture)))
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("timeout");
        FluentActions.Invoking(() => services.AddHealthChecks().AddMailPipe(timeout: TimeSpan.Parse(timeout, System.Globalization.CultureInfo.InvariantCulture)))
            .Should().Throw<ArgumentOutOfRangeException>().Which.ParamName.Should().Be("timeout");
        builder.AddHealthCheck(timeout: Timeout.InfiniteTimeSpan); // no limit stays allowed
    }
}
