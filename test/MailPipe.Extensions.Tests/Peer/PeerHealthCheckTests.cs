using System.Net;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of the health check, through a real ASP.NET Core application on 127.0.0.1 (Kestrel) with
/// <c>MapHealthChecks("/health")</c>: Healthy against Postfix, Unhealthy against a closed port, Degraded when every
/// connection is sending, as the package README's table says.
/// </summary>
public sealed class PeerHealthCheckTests
{
    private static async Task<(WebApplication App, HttpClient Client)> StartAsync(int port, string pool = "{ \"MaxConnections\": 1 }", string? tags = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(
            $$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "Pool": {{pool}}, "Timeouts": { "Connect": "00:00:05", "Reply": "00:01:00" } } }""")));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddHealthCheck(tags: tags is null ? null : [tags]);
        var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");   // a free port (set on the app: UseUrls before Sources.Clear() would be dropped)
        app.MapHealthChecks("/health");
        app.MapHealthChecks("/ready", new Microsoft.AspNetCore.Diagnostics.HealthChecks.HealthCheckOptions { Predicate = c => c.Tags.Contains("ready") });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        new Uri(address).Port.Should().NotBe(5000, "the free port asked for, not Kestrel's default");
        return (app, new HttpClient { BaseAddress = new Uri(address) });
    }

    [Fact]
    public async Task Healthy_against_Postfix_and_the_connection_it_opened_serves_the_next_message()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var (app, client) = await StartAsync(TestServers.PostfixPort, tags: "ready");
        await using var _ = app;
        using var __ = client;

        using var response = await client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().Be("Healthy");
        using var ready = await client.GetAsync("/ready");
        (await ready.Content.ReadAsStringAsync()).Should().Be("Healthy", "the tag given to AddHealthCheck selects it");

        var report = await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        var entry = report.Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Healthy, entry.Description);
        entry.Description.Should().Be($"An idle connection to 127.0.0.1:{TestServers.PostfixPort} answered NOOP.", "the first check's connection stayed in the pool");
        entry.Tags.Should().Contain(["mailpipe", "smtp", "ready"]);

        var sender = app.Services.GetRequiredService<SmtpSender>();
        sender.GetStatistics().Opened.Should().Be(1, "the checks opened one connection");
        var result = await app.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-health")), "Subject: h\r\n\r\nx\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
        sender.GetStatistics().Opened.Should().Be(1, "the check's connection stayed in the pool for the next message");
    }

    [Fact]
    public async Task A_keyed_senders_check_is_named_after_its_key_and_reports_its_own_server()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var closed = TestServers.UnusedPort();
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None",
                        "Bulk": { "Host": "127.0.0.1", "Port": {{closed}}, "TlsMode": "None" } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddHealthCheck();
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        builder.Services.AddHealthChecks().AddMailPipe(serviceKey: "bulk");
        using var host = builder.Build();
        await host.StartAsync();

        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        report.Entries.Keys.Should().BeEquivalentTo(["mailpipe", "mailpipe-bulk"]);
        report.Entries["mailpipe"].Status.Should().Be(HealthStatus.Healthy, report.Entries["mailpipe"].Description);
        report.Entries["mailpipe-bulk"].Status.Should().Be(HealthStatus.Unhealthy);
        report.Entries["mailpipe-bulk"].Description.Should().Contain("127.0.0.1:" + closed);
        report.Status.Should().Be(HealthStatus.Unhealthy);
        await host.StopAsync();
    }

    [Fact]
    public async Task Unhealthy_with_503_against_a_closed_port_naming_the_failure()
    {
        var port = TestServers.UnusedPort();
        var (app, client) = await StartAsync(port);
        await using var _ = app;
        using var __ = client;

        using var response = await client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.ServiceUnavailable);
        (await response.Content.ReadAsStringAsync()).Should().Be("Unhealthy");

        var entry = (await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Unhealthy);
        entry.Description.Should().Contain("ConnectionRefused").And.Contain("127.0.0.1:" + port);
        entry.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
    }

    [Fact]
    public async Task Degraded_with_200_while_every_connection_is_sending()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var marker = "peer-hold-" + Guid.NewGuid().ToString("N");
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { HoldOn = marker };
        var (app, client) = await StartAsync(proxy.Port);
        await using var _ = app;
        using var __ = client;

        using var cancel = new CancellationTokenSource();
        var sender = app.Services.GetRequiredService<ISmtpSender>();
        var stuck = sender.SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-held")), Encoding.ASCII.GetBytes($"Subject: {marker}\r\n\r\nheld\r\n"), cancel.Token);
        await proxy.FirstHeld.WaitAsync(TimeSpan.FromSeconds(30));

        using var response = await client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK, "MapHealthChecks answers 200 for Degraded by default");
        (await response.Content.ReadAsStringAsync()).Should().Be("Degraded");
        var entry = (await app.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];
        entry.Status.Should().Be(HealthStatus.Degraded);
        entry.Description.Should().Contain("(1 of 1) is sending");

        await cancel.CancelAsync();
        var ending = async () => await stuck;
        await ending.Should().ThrowAsync<OperationCanceledException>("the held send ends with the caller's cancellation");
    }

    [Fact]
    public async Task A_server_that_never_greets_is_Unhealthy_when_the_checks_timeout_passes()
    {
        // A black hole: the TCP connection is accepted, no greeting ever comes (the conversation says nothing).
        await using var silent = new LineServer((_, _) => Task.CompletedTask);
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{silent.Port}}, "TlsMode": "None", "Timeouts": { "Reply": "00:05:00" } } }""");
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddHealthCheck(timeout: TimeSpan.FromSeconds(1));
        using var host = builder.Build();
        await host.StartAsync();

        var entry = (await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync()).Entries["mailpipe"];

        entry.Status.Should().Be(HealthStatus.Unhealthy, entry.Description);
        await host.StopAsync();
    }

    [Fact]
    public async Task A_health_check_for_a_key_no_sender_has_stops_the_start_naming_it()
    {
        // A typo in serviceKey: before, the application started and every health request threw (the whole report lost).
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Bulk": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "None" } } }""");
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"));
        builder.Services.AddHealthChecks().AddMailPipe(serviceKey: "blk");
        using var host = builder.Build();

        var start = async () => await host.StartAsync();
        (await start.Should().ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>()).Which.Message
            .Should().Contain("mailpipe-blk").And.Contain("AddKeyedMailPipe(\"blk\"");
    }

    [Fact]
    public async Task A_health_check_without_AddMailPipe_stops_the_start_naming_it()
    {
        var builder = PeerHost.Builder("{}");
        builder.Services.AddHealthChecks().AddMailPipe();
        using var host = builder.Build();

        var start = async () => await host.StartAsync();
        (await start.Should().ThrowAsync<Microsoft.Extensions.Options.OptionsValidationException>()).Which.Message
            .Should().Contain("'mailpipe'").And.Contain("AddMailPipe(");
    }
}
