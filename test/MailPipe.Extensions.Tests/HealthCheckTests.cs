using System.Net;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MailPipe.Extensions.Tests;

/// <summary>GET /health of the sample: 200 against Postfix, 503 with the server stopped or refusing.</summary>
public sealed class HealthCheckTests
{
    [Fact]
    public async Task Healthy_against_Postfix_opening_a_connection_that_stays_in_the_pool()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort);
        using var client = app.CreateClient();

        var response = await client.GetAsync("/health");

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().Be("Healthy");
        var statistics = app.Services.GetRequiredService<SmtpSender>().GetStatistics();
        statistics.Opened.Should().Be(1);
        statistics.Idle.Should().Be(1, "the connection the check opened is lent to the next message");

        // The second check uses the idle connection (NOOP) instead of opening another.
        var report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries["mailpipe"].Status.Should().Be(HealthStatus.Healthy);
        report.Entries["mailpipe"].Description.Should().Be("An idle connection to 127.0.0.1:2525 answered NOOP.");
        report.Entries["mailpipe"].Tags.Should().BeEquivalentTo("mailpipe", "smtp", "ready");
        app.Services.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(1);
    }

    [Fact]
    public async Task Unhealthy_503_when_nobody_listens()
    {
        await using var app = SampleApp.ForPostfix(TestServers.UnusedPort(), ("Smtp:TlsMode", "None"));
        using var client = app.CreateClient();

        var response = await client.GetAsync("/health");

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await response.Content.ReadAsStringAsync()).Should().Be("Unhealthy");
        var report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries["mailpipe"].Description.Should().StartWith("Opening a connection to 127.0.0.1:").And.Contain("(ConnectionRefused)");
    }

    [Fact]
    public async Task Unhealthy_503_when_the_server_refuses_the_session()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "554 5.3.2 No SMTP service here" };
        await using var app = SampleApp.ForPostfix(proxy.Port, ("Smtp:TlsMode", "None"));
        using var client = app.CreateClient();

        var response = await client.GetAsync("/health");

        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        proxy.Accepted.Should().BeGreaterThan(0);
    }

    [Fact]
    public async Task Unhealthy_after_its_timeout_when_the_server_never_answers()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = "EHLO" };
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = proxy.Port;
            o.TlsMode = SmtpTlsMode.None;
        }).AddHealthCheck(timeout: TimeSpan.FromMilliseconds(500));
        await using var provider = services.BuildServiceProvider();

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Status.Should().Be(HealthStatus.Unhealthy);
        report.Entries["mailpipe"].Description.Should().Contain("within 0.5 s");
    }

    [Fact]
    public async Task Degraded_without_a_probe_when_every_slot_is_sending_even_to_a_server_that_stopped_answering()
    {
        // A pool whose every connection is lent has nothing to probe: the check reported Healthy on the pool's word
        // (session 13: it knows nothing of the server, here one that stopped answering, and the next message waits).
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = "MAIL FROM" };
        await using var provider = HeldPoolProvider(proxy, maxConnections: 1);
        using var cancel = new CancellationTokenSource();
        var send = await StartHeldSendAsync(provider, proxy, cancel.Token);

        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Status.Should().Be(HealthStatus.Degraded);
        report.Entries["mailpipe"].Description.Should().Be($"Every connection to 127.0.0.1:{proxy.Port} (1 of 1) is sending, and messages waiting for one: 0; no connection was free to probe (a connection waiting for a server that stopped answering counts as sending until its reply timeout).");
        await CancelHeldSendAsync(cancel, send);
    }

    [Fact]
    public async Task Degraded_when_a_new_connection_is_refused_while_another_is_sending()
    {
        // The server refuses new sessions (its per-client limit) while a lent connection still has its own: the check
        // reported Unhealthy (503 on /health), taking out of rotation an instance whose connection may still deliver.
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = "MAIL FROM" };
        await using var provider = HeldPoolProvider(proxy, maxConnections: 2);
        using var cancel = new CancellationTokenSource();
        var send = await StartHeldSendAsync(provider, proxy, cancel.Token);

        proxy.RefuseWith = "421 4.7.0 Too many connections from your host";
        var report = await provider.GetRequiredService<HealthCheckService>().CheckHealthAsync();

        report.Status.Should().Be(HealthStatus.Degraded, report.Entries["mailpipe"].Description);
        report.Entries["mailpipe"].Description.Should().StartWith($"Opening a new connection to 127.0.0.1:{proxy.Port} failed (").And.EndWith("; connections of the pool still sending: 1.");
        await CancelHeldSendAsync(cancel, send);
    }

    /// <summary>A sender of at most <paramref name="maxConnections"/> connections through <paramref name="proxy"/> (clear text), with the health check.</summary>
    private static ServiceProvider HeldPoolProvider(FaultProxy proxy, int maxConnections)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = proxy.Port;
            o.TlsMode = SmtpTlsMode.None;
            o.Pool.MaxConnections = maxConnections;
        }).AddHealthCheck();
        return services.BuildServiceProvider();
    }

    /// <summary>Starts a send through the sender of <paramref name="provider"/> and returns it once <paramref name="proxy"/> holds it (at its HoldOn text).</summary>
    private static async Task<Task<SmtpSendResult>> StartHeldSendAsync(ServiceProvider provider, FaultProxy proxy, CancellationToken cancellationToken)
    {
        var sender = provider.GetRequiredService<ISmtpSender>();
        var send = sender.SendAsync(new SmtpEnvelope("held@example.test", "rcpt@example.test"), "Subject: held\r\n\r\nHeld.\r\n"u8.ToArray(), cancellationToken);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (proxy.Held == 0)
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the send should reach MAIL FROM within 20 s");
            await Task.Delay(20, CancellationToken.None);
        }

        return send;
    }

    /// <summary>Cancels the held send: it ends cancelled or, if it returns, not accepted.</summary>
    private static async Task CancelHeldSendAsync(CancellationTokenSource cancel, Task<SmtpSendResult> send)
    {
        await cancel.CancelAsync();
        try
        {
            (await send).Outcome.Should().NotBe(SmtpSendOutcome.Accepted);
        }
        catch (OperationCanceledException)
        {
            // Cancelled before its data: nothing was delivered.
        }
    }
}
