using System.Net;
using System.Text;
using MailPipe.Extensions.Tests.Peer;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Resilience;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The health check of a sender with <c>AddStandardResilience()</c> reports its circuit breaker: while the circuit is
/// open every send returns NotSent (ServiceNotAvailable) without a connection, so the check is Unhealthy with the end of
/// the break in its description, even though the server (Postfix, behind a loopback proxy that refused the first
/// sessions with 421) answers again. Before, the check probed the server and said Healthy. Past the break (on the
/// container's clock, a <see cref="FakeTimeProvider"/>: no waiting) the probe decides again, and the trial send closes
/// the circuit. Half-open (a trial held by the proxy) it is Degraded; isolated by Polly's manual control, Unhealthy.
/// </summary>
public sealed class HealthCheckCircuitTests
{
    private static readonly TimeSpan Break = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task An_open_circuit_is_unhealthy_until_its_break_ends_even_when_the_server_answers()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.3.2 Fault proxy: service not available", RefuseFirst = int.MaxValue };
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(
            $$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 2 } } }""")));
        builder.Services.AddSingleton<TimeProvider>(clock);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddHealthCheck()
            .AddStandardResilience(o =>
            {
                o.Retry.MaxRetryAttempts = 0;
                o.CircuitBreaker.MinimumThroughput = 2;
                o.CircuitBreaker.BreakDuration = Break;
            });
        await using var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");
        app.MapHealthChecks("/health");
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()) };
        var sender = app.Services.GetRequiredService<ISmtpSender>();
        var health = app.Services.GetRequiredService<HealthCheckService>();

        // Two sessions refused with 421: half the attempts (at least 2) failed at the server, and the circuit opens.
        for (var i = 0; i < 2; i++)
        {
            var refused = await sender.SendAsync(new SmtpEnvelope("circuit@example.test", TestServers.UniqueRecipient("circuit-refused")), "Subject: c\r\n\r\nx\r\n"u8.ToArray());
            refused.Outcome.Should().Be(SmtpSendOutcome.NotSent, refused.ToString());
        }

        var opened = clock.GetUtcNow();
        var sessions = proxy.Accepted;
        var blocked = await sender.SendAsync(new SmtpEnvelope("circuit@example.test", TestServers.UniqueRecipient("circuit-blocked")), "Subject: c\r\n\r\nx\r\n"u8.ToArray());
        blocked.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        blocked.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ServiceNotAvailable, "the circuit is open");
        proxy.Accepted.Should().Be(sessions, "an open circuit sends without a connection");

        // The server answers again (the proxy relays to Postfix from now on), but the circuit is open for its break.
        proxy.RefuseFirst = sessions;
        using (var response = await http.GetAsync("/health"))
        {
            response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
            (await response.Content.ReadAsStringAsync()).Should().Be("Unhealthy");
        }

        var open = (await health.CheckHealthAsync()).Entries["mailpipe"];
        open.Status.Should().Be(HealthStatus.Unhealthy, open.Description);
        open.Description.Should().Be($"The circuit breaker of 127.0.0.1:{proxy.Port} is open until {(opened + Break).UtcDateTime:yyyy-MM-dd'T'HH:mm:ss'Z'} after repeated failures at the server: until then every send returns NotSent (ServiceNotAvailable) without a connection; the first send after it is a trial.");
        open.Data["circuitState"].Should().Be("Open");
        open.Data["circuitOpenUntil"].Should().Be(opened + Break);
        open.Data["sender"].Should().Be($"127.0.0.1:{proxy.Port}");
        proxy.Accepted.Should().Be(sessions, "the check reports the circuit without probing the server");

        // A check registered with Degraded as its failure status reports the open circuit as Degraded.
        var degraded = await RunWithDegradedFailureAsync(app.Services);
        degraded.Should().Be(HealthStatus.Degraded);

        // Past the break: the next send is a trial, so the probe decides (Postfix answers), and the trial closes the circuit.
        clock.Advance(Break + TimeSpan.FromSeconds(1));
        var after = (await health.CheckHealthAsync()).Entries["mailpipe"];
        after.Status.Should().Be(HealthStatus.Healthy, after.Description);
        after.Data.Should().NotContainKey("circuitState");
        proxy.Accepted.Should().BeGreaterThan(sessions, "the probe connected");
        var sent = await sender.SendAsync(new SmtpEnvelope("circuit@example.test", TestServers.UniqueRecipient("circuit-trial")), "Subject: c\r\n\r\nx\r\n"u8.ToArray());
        sent.Outcome.Should().Be(SmtpSendOutcome.Accepted, sent.ToString());
        // Closed again (two slots: a check right after the send has one to probe with, never Degraded for a busy pool).
        var closed = (await health.CheckHealthAsync()).Entries["mailpipe"];
        closed.Status.Should().Be(HealthStatus.Healthy, closed.Description);
        closed.Data.Should().NotContainKey("circuitState");

        await app.StopAsync();
    }

    [Fact]
    public async Task A_half_open_circuit_is_degraded_while_its_trial_send_runs()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.3.2 Fault proxy: service not available", RefuseFirst = int.MaxValue };
        var proxyDisposed = false;
        try
        {
            var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 7, 8, 0, 0, TimeSpan.Zero));
            var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 2 } } }""");
            builder.Services.AddSingleton<TimeProvider>(clock);
            builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
                .AddHealthCheck()
                .AddStandardResilience(o =>
                {
                    o.Retry.MaxRetryAttempts = 0;
                    o.CircuitBreaker.MinimumThroughput = 2;
                    o.CircuitBreaker.BreakDuration = Break;
                });
            using var host = builder.Build();
            await host.StartAsync();
            var sender = host.Services.GetRequiredService<ISmtpSender>();
            var health = host.Services.GetRequiredService<HealthCheckService>();
            for (var i = 0; i < 2; i++)
            {
                (await sender.SendAsync(new SmtpEnvelope("circuit@example.test", TestServers.UniqueRecipient("circuit-refused")), "Subject: c\r\n\r\nx\r\n"u8.ToArray())).Outcome.Should().Be(SmtpSendOutcome.NotSent);
            }

            (await health.CheckHealthAsync()).Entries["mailpipe"].Data["circuitState"].Should().Be("Open");

            // Past the break the next send is the trial; the proxy now relays, and holds it at MAIL: the circuit is half-open.
            proxy.RefuseFirst = proxy.Accepted;
            proxy.HoldOn = "MAIL FROM";
            clock.Advance(Break + TimeSpan.FromSeconds(1));
            var trial = sender.SendAsync(new SmtpEnvelope("circuit@example.test", TestServers.UniqueRecipient("circuit-trial")), "Subject: c\r\n\r\nx\r\n"u8.ToArray());
            await proxy.FirstHeld;
            var halfOpen = (await health.CheckHealthAsync()).Entries["mailpipe"];
            halfOpen.Status.Should().Be(HealthStatus.Degraded, halfOpen.Description);
            halfOpen.Description.Should().StartWith($"The circuit breaker of 127.0.0.1:{proxy.Port} is half-open: a trial send is running;");
            halfOpen.Data["circuitState"].Should().Be("HalfOpen");

            // The held connection is closed: the trial fails (Unknown when its pipelined end of data had gone out with MAIL), and the circuit opens again.
            proxyDisposed = true;
            await proxy.DisposeAsync();
            (await trial).Outcome.Should().BeOneOf(SmtpSendOutcome.NotSent, SmtpSendOutcome.Unknown);
            (await health.CheckHealthAsync()).Entries["mailpipe"].Data["circuitState"].Should().Be("Open");
            await host.StopAsync();
        }
        finally
        {
            if (!proxyDisposed)
            {
                await proxy.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task A_circuit_isolated_by_manual_control_is_unhealthy_and_its_own_state_provider_is_read()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var control = new Polly.CircuitBreaker.CircuitBreakerManualControl();
        var state = new Polly.CircuitBreaker.CircuitBreakerStateProvider();
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" } }""");
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddHealthCheck()
            .AddStandardResilience(o =>
            {
                o.CircuitBreaker.ManualControl = control;
                o.CircuitBreaker.StateProvider = state;
            });
        using var host = builder.Build();
        await host.StartAsync();
        var health = host.Services.GetRequiredService<HealthCheckService>();
        _ = host.Services.GetRequiredService<ISmtpSender>(); // the pipeline is built with the sender

        await control.IsolateAsync();
        state.CircuitState.Should().Be(Polly.CircuitBreaker.CircuitState.Isolated, "the user's state provider is the breaker's");
        var isolated = (await health.CheckHealthAsync()).Entries["mailpipe"];
        isolated.Status.Should().Be(HealthStatus.Unhealthy, isolated.Description);
        isolated.Description.Should().Be($"The circuit breaker of 127.0.0.1:{TestServers.PostfixPort} is isolated (manual control): every send returns NotSent (ServiceNotAvailable) without a connection until it is closed.");
        isolated.Data["circuitState"].Should().Be("Isolated");
        host.Services.GetRequiredService<SmtpSender>().GetStatistics().Opened.Should().Be(0, "no probe while the circuit is isolated");

        await control.CloseAsync();
        var closed = (await health.CheckHealthAsync()).Entries["mailpipe"];
        closed.Status.Should().Be(HealthStatus.Healthy, closed.Description);
        await host.StopAsync();
    }

    /// <summary>The registered check run once more with Degraded as the registration's failure status.</summary>
    private static async Task<HealthStatus> RunWithDegradedFailureAsync(IServiceProvider services)
    {
        var registration = services.GetRequiredService<Microsoft.Extensions.Options.IOptions<HealthCheckServiceOptions>>().Value.Registrations.Single(r => r.Name == "mailpipe");
        var check = registration.Factory(services);
        var result = await check.CheckHealthAsync(new HealthCheckContext { Registration = new HealthCheckRegistration("mailpipe", check, HealthStatus.Degraded, null) });
        return result.Status;
    }
}
