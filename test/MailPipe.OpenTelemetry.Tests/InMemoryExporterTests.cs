using System.Diagnostics;
using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// One send through the pooled sender to Postfix's submission port (STARTTLS, then AUTH), as the OpenTelemetry
/// in-memory exporter sees it after AddMailPipeInstrumentation(): the spans and instruments the package README lists.
/// </summary>
[Collection(nameof(ExporterCollection))]
public sealed class InMemoryExporterTests
{
    private static readonly ActivitySource Caller = new("MailPipe.OpenTelemetry.Tests");

    private static SmtpSenderOptions SubmissionOptions(string name)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
            EhloName = "client.otel.test",
            MaxConnections = 1,
            Name = name,
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    private static SmtpMessage Message(string recipient) =>
        SmtpMessage.FromBytes(new SmtpEnvelope("otel-sender@example.test", recipient), Encoding.ASCII.GetBytes("Subject: otel\r\n\r\nHello.\r\n"));

    [Fact]
    public async Task One_send_exports_connection_connect_tls_auth_and_transaction_spans_and_the_instruments()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            var name = "otel-" + Guid.NewGuid().ToString("N");
            SmtpSendResult result;
            using (Caller.StartActivity("request"))
            {
                await using var sender = new SmtpSender(SubmissionOptions(name));
                result = await sender.SendAsync(Message(TestServers.UniqueRecipient("otel")));
                meter.ForceFlush().Should().BeTrue();
                metrics.Select(m => m.Name).Should().Contain("mailpipe.sender.connection.count");
            }

            result.IsAccepted.Should().BeTrue(result.ToString());
            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        var request = spans.Single(s => s.OperationName == "request");
        var connection = spans.Single(s => s.OperationName == "smtp connection");
        connection.ParentSpanId.Should().Be(default(ActivitySpanId));
        connection.GetTagItem("tls.protocol.version").Should().BeOneOf("1.2", "1.3");
        foreach (var child in new[] { "smtp connect", "smtp tls", "smtp auth" })
        {
            var span = spans.Single(s => s.OperationName == child);
            span.ParentSpanId.Should().Be(connection.SpanId, child);
            span.GetTagItem("server.address").Should().Be(TestServers.Host);
            span.GetTagItem("server.port").Should().Be(TestServers.PostfixSubmissionPort);
            span.GetTagItem("network.protocol.name").Should().Be("smtp");
            span.Status.Should().Be(ActivityStatusCode.Unset);
        }

        spans.Single(s => s.OperationName == "smtp tls").GetTagItem("tls.protocol.version").Should().BeOneOf("1.2", "1.3");
        spans.Single(s => s.OperationName == "smtp auth").GetTagItem("smtp.reply.code").Should().Be(235);
        var tx = spans.Single(s => s.OperationName == "smtp transaction");
        tx.ParentSpanId.Should().Be(request.SpanId);
        tx.Links.Single().Context.SpanId.Should().Be(connection.SpanId);
        tx.GetTagItem("smtp.outcome").Should().Be("accepted");
        tx.GetTagItem("smtp.reply.code").Should().Be(250);
        tx.GetTagItem("smtp.reply.enhanced_status_code").Should().Be("2.0.0");
        tx.GetTagItem("smtp.recipients.accepted").Should().Be(1);
        tx.GetTagItem("smtp.transfer").Should().BeOneOf("BDAT", "DATA");

        var names = metrics.Select(m => m.Name).Distinct().ToList();
        names.Should().Contain([
            "mailpipe.smtp.messages", "mailpipe.smtp.recipients", "mailpipe.smtp.bytes_sent", "mailpipe.smtp.transaction.duration",
            "mailpipe.smtp.connection.duration", "mailpipe.smtp.connect.duration", "mailpipe.smtp.tls.duration", "mailpipe.smtp.auth.duration",
            "mailpipe.sender.connection.opened", "mailpipe.sender.batch.size",
        ]);
        Sum(metrics, "mailpipe.smtp.messages", ("smtp.outcome", "accepted")).Should().Be(1);
    }

    [Fact]
    public async Task With_ParentBased_sampling_an_unsampled_parent_drops_the_transaction_span_and_the_README_remedy_keeps_it()
    {
        foreach (var remedy in new[] { false, true })
        {
            var spans = new List<Activity>();
            var sampler = remedy
                ? new ParentBasedSampler(new AlwaysOnSampler(), remoteParentNotSampled: new AlwaysOnSampler())
                : new ParentBasedSampler(new AlwaysOnSampler());
            using (var tracer = Sdk.CreateTracerProviderBuilder().SetSampler(sampler).AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
            {
                // An incoming request whose traceparent says "not sampled" (flags 00).
                var remote = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.None, isRemote: true);
                await using var sender = new SmtpSender(SubmissionOptions("otel-sampling-" + Guid.NewGuid().ToString("N")));
                using (Caller.StartActivity("unsampled-request", ActivityKind.Server, remote))
                {
                    (await sender.SendAsync(Message(TestServers.UniqueRecipient("otel-sampling")))).IsAccepted.Should().BeTrue();
                }

                await sender.DisposeAsync();
                tracer.ForceFlush();
                spans.Should().Contain(s => s.OperationName == "smtp connection", "connection spans are roots: sampled on their own");
                if (remedy)
                {
                    spans.Should().ContainSingle(s => s.OperationName == "smtp transaction").Which.TraceId.Should().Be(remote.TraceId);
                }
                else
                {
                    spans.Should().NotContain(s => s.OperationName == "smtp transaction", "ParentBased drops children of an unsampled parent");
                }
            }
        }
    }

    [Fact]
    public async Task A_refused_transaction_has_its_reply_code_as_error_type_and_counts_as_refused()
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var sender = new SmtpSender(SubmissionOptions("otel-refused-" + Guid.NewGuid().ToString("N"))))
            {
                var result = await sender.SendAsync(Message("unknown-otel-" + Guid.NewGuid().ToString("N") + "@example.test"));
                result.Outcome.Should().Be(SmtpSendOutcome.Refused, result.ToString());
            }

            meter.ForceFlush();
            tracer.ForceFlush();
        }

        var tx = spans.Single(s => s.OperationName == "smtp transaction");
        tx.Status.Should().Be(ActivityStatusCode.Error);
        tx.GetTagItem("smtp.outcome").Should().Be("refused");
        tx.GetTagItem("error.type").Should().Be("550");
        tx.GetTagItem("smtp.reply.code").Should().Be(550);
        tx.GetTagItem("smtp.recipients.refused").Should().Be(1);
        Sum(metrics, "mailpipe.smtp.messages", ("smtp.outcome", "refused")).Should().Be(1);
        Sum(metrics, "mailpipe.smtp.recipients", ("smtp.recipient.status", "refused")).Should().Be(1);
    }

    private static double Sum(List<Metric> metrics, string name, (string Key, object Value) tag)
    {
        double sum = 0;
        foreach (var metric in metrics.Where(m => m.Name == name))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var t in point.Tags)
                {
                    if (t.Key == tag.Key && Equals(t.Value, tag.Value))
                    {
                        sum = Math.Max(sum, point.GetSumLong());
                    }
                }
            }
        }

        return sum;
    }
}

/// <summary>Process-wide listeners: one test at a time.</summary>
[CollectionDefinition(nameof(ExporterCollection), DisableParallelization = true)]
public sealed class ExporterCollection;
