using System.Diagnostics;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.OpenTelemetry's "while the server is down" paragraph, in a host with the in-memory
/// exporter: a closed port and a server that refuses the session with a 421 greeting each give a failed
/// <c>smtp connection</c> root with <c>error.type</c>, no transaction, no <c>mailpipe.smtp.messages</c>, and a rising
/// <c>mailpipe.sender.connection.open_failures</c>. So does a server that greets with 220 and answers EHLO with 421
/// (the span used to end without <c>error.type</c> then: the 421 closed the connection before the pool said why).
/// </summary>
public sealed class PeerTelemetryFailureTests
{
    public static TheoryData<string> Servers => ["closed", "421", "ehlo-421"];

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task A_connection_that_fails_to_open_is_a_root_span_with_error_type_and_an_open_failure(string server)
    {
        await using var proxy = new FaultProxy(TestServers.PostfixPort) { RefuseWith = "421 4.7.0 Peer proxy: too many connections", RefuseFirst = int.MaxValue };
        await using var ehloRefuser = new LineServer(async (c, ct) =>
        {
            await c.SendAsync("220 line.example.test ESMTP", ct);
            await c.ExpectAsync("EHLO", ct);
            await c.SendAsync("421 4.7.0 line.example.test too busy, closing", ct);
        });
        var port = server switch { "closed" => TestServers.UnusedPort(), "ehlo-421" => ehloRefuser.Port, _ => proxy.Port };
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } } }""");
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        builder.Services.AddOpenTelemetry()
            .WithTracing(t => t.AddMailPipeInstrumentation().AddInMemoryExporter(spans))
            .WithMetrics(m => m.AddMailPipeInstrumentation().AddInMemoryExporter(metrics));
        using (var host = builder.Build())
        {
            await host.StartAsync();
            var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-down")), "Subject: down\r\n\r\nx\r\n"u8.ToArray());
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            await host.StopAsync();
        }

        var mine = spans.Where(s => Equals(s.GetTagItem("server.port"), port)).ToList();
        mine.Should().NotContain(s => s.OperationName == "smtp transaction", "a message no connection took has no transaction span");
        var connection = mine.Should().ContainSingle(s => s.OperationName == "smtp connection").Which;
        connection.ParentSpanId.Should().Be(default(ActivitySpanId));
        connection.GetTagItem("error.type").Should().NotBeNull("the README: error.type when the connection failed to open; tags: {0}", string.Join(", ", connection.TagObjects.Select(t => $"{t.Key}={t.Value}")));
        connection.Status.Should().Be(ActivityStatusCode.Error);
        connection.GetTagItem("error.type").Should().Be(server == "closed" ? "ConnectionRefused" : "421");

        var messages = metrics.Where(m => m.Name == "mailpipe.smtp.messages").SelectMany(m => m.MetricPoints).Where(p => HasTag(p, "server.port", port));
        messages.Should().BeEmpty("while the server is down mailpipe.smtp.messages stays flat");
        metrics.Where(m => m.Name == "mailpipe.sender.connection.open_failures").SelectMany(m => m.MetricPoints)
            .Should().Contain(p => HasTag(p, "mailpipe.sender.name", "127.0.0.1:" + port) && p.GetSumLong() >= 1);
    }

    private static bool HasTag(MetricPoint point, string key, object value)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key && Equals(tag.Value, value))
            {
                return true;
            }
        }

        return false;
    }
}
