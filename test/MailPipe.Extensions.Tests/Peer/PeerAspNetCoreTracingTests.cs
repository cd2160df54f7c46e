using System.Diagnostics;
using System.Net;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Trace;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.OpenTelemetry's "In ASP.NET Core, record the requests too": on Kestrel, a send from an
/// endpoint gives an <c>smtp transaction</c> span under the request's span when the provider records the requests
/// (<c>AddAspNetCoreInstrumentation()</c>), and none when it does not (ASP.NET Core's unrecorded request activity is an
/// unsampled parent), while the connection spans, roots of their own, are there either way.
/// </summary>
[Collection(nameof(PeerAspNetCoreTracingTests))]
[CollectionDefinition(nameof(PeerAspNetCoreTracingTests), DisableParallelization = true)]
public sealed class PeerAspNetCoreTracingTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_transaction_span_goes_under_the_request_only_when_the_requests_are_recorded(bool recordRequests)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        var spans = new List<Activity>();
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(
            $$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } } }""")));
        builder.Services.AddOpenTelemetry().WithTracing(t =>
        {
            if (recordRequests)
            {
                t.AddAspNetCoreInstrumentation();
            }

            t.AddMailPipeInstrumentation().AddInMemoryExporter(spans);
        });
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        var recipient = TestServers.UniqueRecipient("peer-aspnet");
        await using (var app = builder.Build())
        {
            app.Urls.Add("http://127.0.0.1:0");   // a free port (set on the app: UseUrls before Sources.Clear() would be dropped)
            app.MapPost("/hello", async (ISmtpSender sender, CancellationToken ct) =>
                Results.Ok((await sender.SendAsync(new SmtpEnvelope("peer@example.test", recipient), "Subject: Hello\r\n\r\nHi\r\n"u8.ToArray(), ct)).Outcome.ToString()));
            await app.StartAsync();
            using var client = new HttpClient { BaseAddress = new Uri(app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single()) };
            using var response = await client.PostAsync("/hello", null);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            (await response.Content.ReadAsStringAsync()).Should().Be("\"Accepted\"");
            await app.StopAsync();
        }

        var mine = spans.Where(s => Equals(s.GetTagItem("server.port"), proxy.Port)).ToList();
        mine.Should().ContainSingle(s => s.OperationName == "smtp connection", "connection spans are roots, sampled on their own");
        if (recordRequests)
        {
            var transaction = mine.Should().ContainSingle(s => s.OperationName == "smtp transaction").Which;
            var request = spans.Should().ContainSingle(s => s.SpanId == transaction.ParentSpanId).Which;
            request.Source.Name.Should().Be("Microsoft.AspNetCore");
            request.Kind.Should().Be(ActivityKind.Server);
        }
        else
        {
            mine.Should().NotContain(s => s.OperationName == "smtp transaction", "the README: an unrecorded request is an unsampled parent and the default sampler drops its children");
        }
    }
}
