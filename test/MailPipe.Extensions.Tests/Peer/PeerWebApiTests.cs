using System.Net;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Resilience;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of the README's "Several servers" service on Kestrel (127.0.0.1): a default and a keyed sender in
/// one appsettings section, each with a resilience section nested in its own, a minimal API endpoint taking
/// <c>[FromKeyedServices("bulk")] ISmtpSender</c>, and a typo in a nested resilience section failing the start with its full key.
/// </summary>
public sealed class PeerWebApiTests
{
    private static string Settings(int port, string bulkResilience = "{ \"Retry\": { \"MaxRetryAttempts\": 1, \"Delay\": \"00:00:00.010\" } }") => $$"""
        { "Smtp": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None",
                    "Resilience": { "Retry": { "MaxRetryAttempts": 2, "Delay": "00:00:00.010" } },
                    "Bulk": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 },
                              "Resilience": {{bulkResilience}} } } }
        """;

    private static WebApplication Build(string json)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("Smtp:Resilience"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"))
            .AddStandardResilience(builder.Configuration.GetSection("Smtp:Bulk:Resilience"))
            .AddHealthCheck();
        var app = builder.Build();
        app.Urls.Add("http://127.0.0.1:0");   // a free port (set on the app: UseUrls before Sources.Clear() would be dropped)
        app.MapPost("/newsletter/{to}", async (string to, [FromKeyedServices("bulk")] ISmtpSender bulk, CancellationToken cancellationToken) =>
        {
            var result = await bulk.SendAsync(new SmtpEnvelope("news@example.test", to, "tempfail@example.test"), "Subject: News\r\n\r\nThis month...\r\n"u8.ToArray(), cancellationToken);
            return Results.Ok(new { outcome = result.Outcome.ToString(), attempts = result.Attempts });
        });
        app.MapHealthChecks("/health");
        return app;
    }

    [Fact]
    public async Task A_keyed_sender_with_its_own_nested_resilience_serves_a_minimal_API_endpoint()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = Build(Settings(TestServers.PostfixPort));
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()) };

        app.Services.GetRequiredKeyedService<ISmtpSender>("bulk").Should().BeOfType<ResilientSmtpSender>();
        var monitor = app.Services.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>();
        monitor.Get("bulk").Retry.MaxRetryAttempts.Should().Be(1, "Smtp:Bulk:Resilience is the keyed sender's own");
        monitor.Get(Options.DefaultName).Retry.MaxRetryAttempts.Should().Be(2, "Smtp:Resilience is the default sender's");

        var recipient = TestServers.UniqueRecipient("peer-newsletter");
        using var response = await client.PostAsync($"/newsletter/{recipient}", null);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        (await response.Content.ReadAsStringAsync()).Should().Be("{\"outcome\":\"Accepted\",\"attempts\":2}", "tempfail@ was asked again once (MaxRetryAttempts 1 of the bulk section)");
        await TestServers.WaitForMaildirAsync(recipient);

        using var health = await client.GetAsync("/health");
        (await health.Content.ReadAsStringAsync()).Should().Be("Healthy");
    }

    [Fact]
    public async Task A_typo_in_a_nested_keyed_resilience_section_fails_the_start_with_its_full_key()
    {
        await using var app = Build(Settings(TestServers.PostfixPort, "{ \"Retry\": { \"MaxRetryAtempts\": 1 } }"));
        var start = async () => await app.StartAsync();
        (await start.Should().ThrowAsync<OptionsValidationException>()).Which.Message.Should().Contain("Smtp:Bulk:Resilience:Retry:MaxRetryAtempts");
    }
}
