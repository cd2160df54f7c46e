using System.Diagnostics;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.Extensions.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.OpenTelemetry in a host: <c>AddMailPipe</c> from appsettings JSON, then
/// <c>AddOpenTelemetry()</c> with <c>AddMailPipeInstrumentation()</c> and the in-memory exporter, one accepted and one
/// refused message through Postfix (behind a proxy of this test's own, so that its port tells this test's spans and
/// measurements from those of tests running at the same time), as the package README's tables name them.
/// </summary>
public sealed class PeerTelemetryTests
{
    private static readonly ActivitySource Caller = new("MailPipe.Extensions.Tests.Peer");

    [Fact]
    public async Task Spans_and_instruments_of_a_host_are_exported_with_the_documented_names_and_tags()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        var spans = new List<Activity>();
        var metrics = new List<MetricSnapshot>();
        var builder = PeerHost.Builder($$"""{ "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None", "Pool": { "MaxConnections": 1 } } }""");

        // In the order of the READMEs: the sender first (package README of the DI package), then OpenTelemetry (its own).
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"));
        builder.Services.AddOpenTelemetry()
            .WithTracing(t => t.AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans))
            .WithMetrics(m => m.AddMailPipeInstrumentation().AddInMemoryExporter(metrics));
        var recipient = TestServers.UniqueRecipient("peer-otel");
        ActivityTraceId trace;
        using (var host = builder.Build())
        {
            await host.StartAsync();
            var sender = host.Services.GetRequiredService<ISmtpSender>();
            using (var request = Caller.StartActivity("peer request"))
            {
                trace = request!.TraceId;
                (await sender.SendAsync(new SmtpEnvelope("peer@example.test", recipient), Encoding.ASCII.GetBytes("Subject: otel\r\n\r\nx\r\n"))).IsAccepted.Should().BeTrue();
                var refused = await sender.SendAsync(new SmtpEnvelope("peer@example.test", "unknown-peer-" + Guid.NewGuid().ToString("N") + "@example.test"), "Subject: otel\r\n\r\nx\r\n"u8.ToArray());
                refused.Outcome.Should().Be(SmtpSendOutcome.Refused);
            }

            await host.StopAsync();
        }

        var mine = spans.Where(s => Equals(s.GetTagItem("server.port"), proxy.Port)).ToList();
        var transactions = mine.Where(s => s.OperationName == "smtp transaction").ToList();
        transactions.Should().HaveCount(2);
        transactions.Should().OnlyContain(s => s.TraceId == trace && s.Kind == ActivityKind.Client, "a transaction span is a child of the caller's activity");
        var accepted = transactions.Single(s => (string?)s.GetTagItem("smtp.outcome") == "accepted");
        accepted.GetTagItem("server.address").Should().Be("127.0.0.1");
        accepted.GetTagItem("network.protocol.name").Should().Be("smtp");
        accepted.GetTagItem("smtp.transfer").Should().BeOneOf("BDAT", "DATA");
        accepted.GetTagItem("smtp.recipients").Should().Be(1);
        accepted.GetTagItem("smtp.recipients.accepted").Should().Be(1);
        accepted.GetTagItem("smtp.reply.code").Should().Be(250);
        accepted.GetTagItem("error.type").Should().BeNull();
        var refusedSpan = transactions.Single(s => (string?)s.GetTagItem("smtp.outcome") == "refused");
        refusedSpan.GetTagItem("error.type").Should().Be("550");
        refusedSpan.Status.Should().Be(ActivityStatusCode.Error);

        // The connection ended when the host disposed the sender (QUIT at shutdown): its span is exported too.
        var connection = mine.Should().ContainSingle(s => s.OperationName == "smtp connection", "the README: the connection spans end when the container disposes the sender").Which;
        connection.ParentSpanId.Should().Be(default(ActivitySpanId));
        connection.GetTagItem("smtp.transactions").Should().Be(2);
        mine.Should().ContainSingle(s => s.OperationName == "smtp connect").Which.ParentSpanId.Should().Be(connection.SpanId);
        accepted.Links.Single().Context.SpanId.Should().Be(connection.SpanId);

        // No address anywhere unless LogAddresses.
        foreach (var span in mine)
        {
            foreach (var tag in span.TagObjects)
            {
                (tag.Value?.ToString() ?? string.Empty).Should().NotContain("@", $"{span.OperationName} {tag.Key}");
            }
        }

        // Every snapshot of an instrument: other tests' hosts in this process have meters named MailPipe too (one per
        // container's IMeterFactory), each its own metric stream of the same name; this test's points carry its port.
        var port = proxy.Port;
        bool Mine(MetricPoint p) => HasTag(p, "server.port", port);
        Unit(metrics, "mailpipe.smtp.messages").Should().Be("{message}");
        var messages = Points(metrics, "mailpipe.smtp.messages").Where(Mine).ToList();
        messages.Should().Contain(p => HasTag(p, "smtp.outcome", "accepted"));
        messages.Should().Contain(p => HasTag(p, "smtp.outcome", "refused") && HasTag(p, "error.type", "550"));
        Points(metrics, "mailpipe.smtp.recipients").Where(Mine).Should().Contain(p => HasTag(p, "smtp.recipient.status", "refused"));
        Unit(metrics, "mailpipe.smtp.recipients").Should().Be("{recipient}");
        Unit(metrics, "mailpipe.smtp.bytes_sent").Should().Be("By");
        Points(metrics, "mailpipe.smtp.bytes_sent").Where(Mine).Should().NotBeEmpty();
        Unit(metrics, "mailpipe.smtp.transaction.duration").Should().Be("s");
        Points(metrics, "mailpipe.smtp.connect.duration").Where(Mine).Should().NotBeEmpty();
        Points(metrics, "mailpipe.smtp.connection.duration").Where(Mine).Should().NotBeEmpty("the connection closed at shutdown is measured before the meter provider goes");
        var senderName = "127.0.0.1:" + port;
        Points(metrics, "mailpipe.sender.connection.opened").Should().Contain(p => HasTag(p, "mailpipe.sender.name", senderName));
        Unit(metrics, "mailpipe.sender.batch.size").Should().Be("{message}");
    }

    [Fact]
    public async Task Retries_of_MailPipe_Resilience_are_counted_by_Pollys_meter_not_by_mailpipe_sender_retries()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var proxy = new FaultProxy(TestServers.PostfixPort);
        var metrics = new List<MetricSnapshot>();
        var builder = PeerHost.Builder($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{proxy.Port}}, "TlsMode": "None" },
              "SmtpResilience": { "Retry": { "MaxRetryAttempts": 2, "Delay": "00:00:00.010", "MaxDelay": "00:00:00.050" } } }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp")).AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMailPipeInstrumentation().AddMeter("Polly").AddInMemoryExporter(metrics));
        var senderName = "127.0.0.1:" + proxy.Port;
        using (var host = builder.Build())
        {
            await host.StartAsync();
            var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(
                new SmtpEnvelope("peer@example.test", TestServers.UniqueRecipient("peer-polly"), "tempfail@example.test"), "Subject: r\r\n\r\nx\r\n"u8.ToArray());
            result.Attempts.Should().Be(3);
            await host.StopAsync();
        }

        Points(metrics, "mailpipe.sender.retries").Where(p => HasTag(p, "mailpipe.sender.name", senderName)).Sum(p => p.GetSumLong())
            .Should().Be(0, "it counts the pooled sender's own retry on a fresh connection only");
        Points(metrics, "mailpipe.smtp.messages").Where(p => HasTag(p, "server.port", proxy.Port)).Sum(p => p.GetSumLong())
            .Should().BeGreaterThanOrEqualTo(3, "each attempt is a transaction of its own");
        Points(metrics, "resilience.polly.strategy.events").Where(p => HasTag(p, "event.name", "OnRetry") && HasTag(p, "pipeline.instance", senderName)).Sum(p => p.GetSumLong())
            .Should().BeGreaterThanOrEqualTo(2, "Polly's meter counts the pipeline's retries");
    }

    private static List<MetricPoint> Points(List<MetricSnapshot> metrics, string name) =>
        [.. metrics.Where(m => m.Name == name).SelectMany(m => m.MetricPoints)];

    private static string Unit(List<MetricSnapshot> metrics, string name)
    {
        metrics.Should().Contain(m => m.Name == name, "the README lists {0}", name);
        return metrics.First(m => m.Name == name).Unit;
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
