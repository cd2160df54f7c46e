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

namespace MailPipe.Extensions.Tests;

/// <summary>
/// The ASP.NET Core blocks of README.md, src/MailPipe/README.md, src/MailPipe.Resilience/README.md and
/// src/MailPipe.Extensions.DependencyInjection/README.md as a new user runs them: on Kestrel (127.0.0.1, a free port),
/// configured from the section the block names (Postfix 2525 with STARTTLS and the test CA), each endpoint called over
/// HTTP; only the server settings and the example addresses are adapted.
/// </summary>
[Collection(nameof(Run21AspNetCoreReadmeTests))]
[CollectionDefinition(nameof(Run21AspNetCoreReadmeTests), DisableParallelization = true)]
public sealed class Run21AspNetCoreReadmeTests
{
    private static string SmtpJson(string name = "Smtp", string extra = "") => $$"""
        "{{name}}": { "Host": "127.0.0.1", "Port": {{TestServers.PostfixPort}}, "TlsMode": "StartTlsRequired",
                      "Tls": { "CaFile": "{{TestServers.TlsCertificate}}" }{{extra}} }
        """;

    private static WebApplicationBuilder NewBuilder(string json)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes("{" + json + "}")));
        return builder;
    }

    private static async Task<(HttpClient Client, WebApplication App)> StartAsync(WebApplication app)
    {
        app.Urls.Add("http://127.0.0.1:0");
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return (new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromSeconds(90) }, app);
    }

    private static async Task<string> HealthAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/health");
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>README.md "ASP.NET Core": /hello answers 200 with the outcome ("Accepted"), /health is Healthy, ISmtpSender is the resilient one.</summary>
    [Fact]
    public async Task Readme_aspnetcore_block_sends_and_reports_health()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-hello");
        var builder = NewBuilder(SmtpJson());
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience()
            .AddHealthCheck();

        await using var app = builder.Build();
        app.MapPost("/hello", async (ISmtpSender sender, CancellationToken ct) =>
        {
            var envelope = new SmtpEnvelope("alice@example.test", bob);
            var result = await sender.SendAsync(envelope, "Subject: Hello\r\n\r\nHi Bob\r\n"u8.ToArray(), ct);
            return Results.Ok(result.Outcome.ToString());
        });
        app.MapHealthChecks("/health");
        var (client, _) = await StartAsync(app);
        using (client)
        {
            app.Services.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
            using var response = await client.PostAsync("/hello", null);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Be("\"Accepted\"");
            (await HealthAsync(client)).Should().Be("Healthy");
            (await TestServers.WaitForMaildirAsync(bob)).Should().HaveCount(1);
        }

        await app.StopAsync();
    }

    /// <summary>src/MailPipe/README.md "ASP.NET Core quick start": the sender from the section Smtp, /health Healthy.</summary>
    [Fact]
    public async Task Package_readme_aspnetcore_quick_start_is_healthy()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var builder = NewBuilder(SmtpJson());
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddHealthCheck();
        await using var app = builder.Build();
        app.MapHealthChecks("/health");
        var (client, _) = await StartAsync(app);
        using (client)
        {
            (await HealthAsync(client)).Should().Be("Healthy");
        }

        await app.StopAsync();
    }

    /// <summary>
    /// src/MailPipe.Resilience/README.md "One line with dependency injection": carol@ (Postfix's tempfail@, 450) is asked
    /// again until the retries run out, bob@ and alice@ once; the endpoint answers the outcome and the attempts.
    /// </summary>
    [Fact]
    public async Task Resilience_readme_DI_block_answers_outcome_and_attempts()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var alice = TestServers.UniqueRecipient("run21-alice");
        var bob = TestServers.UniqueRecipient("run21-bob");
        var builder = NewBuilder(SmtpJson() + """, "SmtpResilience": { "Retry": { "Delay": "00:00:00.050", "UseJitter": false } }""");
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));

        await using var app = builder.Build();
        app.MapPost("/hello", async (ISmtpSender sender, CancellationToken ct) =>
        {
            var envelope = new SmtpEnvelope(alice, bob, "tempfail@example.test");
            SmtpSendResult result = await sender.SendAsync(envelope, "Subject: Hello\r\n\r\nHi\r\n"u8.ToArray(), ct);
            return Results.Ok(new { outcome = result.Outcome.ToString(), attempts = result.Attempts });
        });
        var (client, _) = await StartAsync(app);
        using (client)
        {
            app.Services.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>();
            app.Services.GetRequiredService<SmtpSender>().Should().NotBeNull("the pooled SmtpSender stays registered");
            using var response = await client.PostAsync("/hello", null);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Be("""{"outcome":"Accepted","attempts":4}""", "MaxRetryAttempts 3 by default");
            (await TestServers.WaitForMaildirAsync(bob)).Should().HaveCount(1);
            await Task.Delay(500);
            Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, bob, "new")).Should().HaveCount(1, "never again to a recipient that accepted");
        }

        await app.StopAsync();
    }

    /// <summary>src/MailPipe.Extensions.DependencyInjection/README.md "ASP.NET Core quick start": the outcome and the final reply code; /health with the tag.</summary>
    [Fact]
    public async Task DI_readme_quick_start_answers_outcome_and_reply_code()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var orders = TestServers.UniqueRecipient("run21-orders");
        var builder = NewBuilder(SmtpJson(extra: """, "Pool": { "MaxConnections": 4 }"""));
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddHealthCheck(tags: ["ready"]);

        await using var app = builder.Build();
        app.MapPost("/orders/{id:int}/confirmation", async (int id, ISmtpSender sender, CancellationToken cancellationToken) =>
        {
            var envelope = new SmtpEnvelope("shop@example.test", orders);
            var content = Encoding.UTF8.GetBytes($"From: shop@example.test\r\nTo: orders@example.test\r\nSubject: Order {id}\r\n\r\nOrder {id} is confirmed.\r\n");
            SmtpSendResult result = await sender.SendAsync(envelope, content, cancellationToken);
            return Results.Ok(new { outcome = result.Outcome.ToString(), replyCode = result.FinalReply?.Code });
        });
        app.MapHealthChecks("/health");
        var (client, _) = await StartAsync(app);
        using (client)
        {
            using var response = await client.PostAsync("/orders/42/confirmation", null);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Be("""{"outcome":"Accepted","replyCode":250}""");
            (await HealthAsync(client)).Should().Be("Healthy");
            var stored = await File.ReadAllTextAsync((await TestServers.WaitForMaildirAsync(orders))[0]);
            stored.Should().Contain("Subject: Order 42").And.Contain("Order 42 is confirmed.");
        }

        await app.StopAsync();
    }

    /// <summary>src/MailPipe.Extensions.DependencyInjection/README.md "Several servers": the keyed "bulk" sender sends from /newsletter.</summary>
    [Fact]
    public async Task DI_readme_keyed_senders_block_sends_through_bulk()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var subscriber = TestServers.UniqueRecipient("run21-news");
        var builder = NewBuilder("\"Smtp\": {" + SmtpJson("Transactional") + "," + SmtpJson("Bulk", """, "Pool": { "MaxConnections": 2 }""") + "}");
        builder.Services.AddKeyedMailPipe("transactional", builder.Configuration.GetSection("Smtp:Transactional"));
        builder.Services.AddKeyedMailPipe("bulk", builder.Configuration.GetSection("Smtp:Bulk"))
            .AddHealthCheck();

        await using var app = builder.Build();
        app.MapPost("/newsletter", async ([FromKeyedServices("bulk")] ISmtpSender bulk, CancellationToken cancellationToken) =>
        {
            var envelope = new SmtpEnvelope("news@example.test", subscriber);
            var result = await bulk.SendAsync(envelope, "Subject: News\r\n\r\nThis month...\r\n"u8.ToArray(), cancellationToken);
            return Results.Ok(result.Outcome.ToString());
        });
        var (client, _) = await StartAsync(app);
        using (client)
        {
            using var response = await client.PostAsync("/newsletter", null);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Be("\"Accepted\"");
            (await TestServers.WaitForMaildirAsync(subscriber)).Should().HaveCount(1);
        }

        await app.StopAsync();
    }
}
