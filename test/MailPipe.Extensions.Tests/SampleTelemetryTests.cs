using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Samples.WebApi;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace MailPipe.Extensions.Tests;

/// <summary>The sample's one-line telemetry set-up (Telemetry:Exporter = inmemory) against the real Postfix.</summary>
public sealed class SampleTelemetryTests
{
    [Fact]
    public async Task Post_mail_exports_a_transaction_span_under_the_request_span_and_the_MailPipe_metrics()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("Telemetry:Exporter", "inmemory"));
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("otel");

        // Our request's trace, told apart from the other tests' (the listeners are process-wide) by a traceparent of our own.
        var traceId = ActivityTraceId.CreateRandom();
        using var post = new HttpRequestMessage(HttpMethod.Post, "/mail")
        {
            Content = JsonContent.Create(new { from = "alice@example.test", to = new[] { recipient }, subject = "traced", body = "Hello.\n" }),
        };
        post.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        var response = await client.SendAsync(post);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var store = app.Services.GetRequiredService<TelemetryStore>();
        Activity? request = null;
        Activity? transaction = null;
        for (var i = 0; i < 100 && (request is null || transaction is null); i++)
        {
            lock (store.Spans)
            {
                transaction = store.Spans.FirstOrDefault(s => s.Source.Name == "MailPipe" && s.OperationName == "smtp transaction" && s.TraceId == traceId);
                request = transaction is null ? null : store.Spans.FirstOrDefault(s => s.SpanId == transaction.ParentSpanId);
            }

            await Task.Delay(50);
        }

        transaction.Should().NotBeNull("MailPipe's transaction span is exported");
        request.Should().NotBeNull("the transaction span's parent is an exported span");
        request!.Source.Name.Should().Be("Microsoft.AspNetCore");
        request.DisplayName.Should().StartWith("POST");
        request.TraceId.Should().Be(traceId);
        transaction!.GetTagItem("smtp.outcome").Should().Be("accepted");
        lock (store.Spans)
        {
            store.Spans.Should().Contain(s => s.OperationName == "smtp tls" && (string?)s.GetTagItem("tls.protocol.version") != null);
        }

        app.Services.GetRequiredService<MeterProvider>().ForceFlush().Should().BeTrue();
        lock (store.Metrics)
        {
            store.Metrics.Select(m => m.Name).Should().Contain(["mailpipe.smtp.messages", "mailpipe.smtp.transaction.duration", "mailpipe.sender.connection.count"]);
        }
    }
}
