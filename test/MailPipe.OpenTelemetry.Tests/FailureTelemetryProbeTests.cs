using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MailPipe.IntegrationTests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// breaker16's probes of the package README's failure rows, through the pooled sender and the in-memory exporter: a
/// failed connect, TLS handshake or AUTH sets error.type and status Error on its span and on the failure counter, and no
/// span, event, link, baggage or metric dimension carries an address, a local part or the subject.
/// </summary>
[Collection(nameof(ExporterCollection))]
public sealed class FailureTelemetryProbeTests
{
    private const string LocalPart = "probe16-secret-local";
    private const string Subject = "probe16-secret-subject";
    private static readonly ActivitySource Caller = new("MailPipe.OpenTelemetry.Tests.Probe16");

    private static SmtpMessage Message() =>
        SmtpMessage.FromBytes(
            new SmtpEnvelope("probe16-from@example.test", LocalPart + "@example.test"),
            Encoding.ASCII.GetBytes($"Subject: {Subject}\r\n\r\nHello.\r\n"));

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<(List<Activity> Spans, List<Metric> Metrics, SmtpSendResult? Result, Exception? Thrown)> RunAsync(SmtpSenderOptions options)
    {
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        SmtpSendResult? result = null;
        Exception? thrown = null;
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var sender = new SmtpSender(options))
            {
                using (Caller.StartActivity("request"))
                {
                    try
                    {
                        result = await sender.SendAsync(Message());
                    }
                    catch (SmtpException ex)
                    {
                        thrown = ex;
                    }
                }
            }

            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        AssertNoAddressOrSubject(spans, metrics);
        return (spans, metrics, result, thrown);
    }

    private static void AssertNoAddressOrSubject(List<Activity> spans, List<Metric> metrics)
    {
        var texts = new List<string>();
        foreach (var span in spans)
        {
            texts.Add(span.DisplayName);
            texts.Add(span.StatusDescription ?? string.Empty);
            texts.AddRange(span.TagObjects.Select(t => $"{t.Key}={t.Value}"));
            texts.AddRange(span.Baggage.Select(b => $"{b.Key}={b.Value}"));
            foreach (var e in span.Events)
            {
                texts.Add(e.Name);
                texts.AddRange(e.Tags.Select(t => $"{t.Key}={t.Value}"));
            }

            foreach (var link in span.Links)
            {
                texts.AddRange((link.Tags ?? []).Select(t => $"{t.Key}={t.Value}"));
            }
        }

        foreach (var metric in metrics)
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    texts.Add($"{tag.Key}={tag.Value}");
                }
            }
        }

        texts.Should().NotContain(t => t.Contains('@') || t.Contains(LocalPart, StringComparison.Ordinal) || t.Contains(Subject, StringComparison.Ordinal) || t.Contains("probe16-from", StringComparison.Ordinal));
    }

    private static long FailureCount(List<Metric> metrics, string name, string errorType)
    {
        long count = 0;
        foreach (var metric in metrics.Where(m => m.Name == name))
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var t in point.Tags)
                {
                    if (t.Key == "error.type" && Equals(t.Value, errorType))
                    {
                        count = Math.Max(count, point.GetSumLong());
                    }
                }
            }
        }

        return count;
    }

    [Fact]
    public async Task A_refused_connect_sets_error_type_ConnectionRefused_and_status_Error_on_the_connect_and_connection_spans()
    {
        var port = FreePort();
        var (spans, metrics, result, thrown) = await RunAsync(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = SmtpTlsMode.None,
            MaxConnections = 1,
            Name = "probe16-refused-" + Guid.NewGuid().ToString("N"),
        });

        (result?.Outcome ?? SmtpSendOutcome.NotSent).Should().Be(SmtpSendOutcome.NotSent, $"{result} {thrown}");
        var connect = spans.Where(s => s.OperationName == "smtp connect").Should().NotBeEmpty().And.Subject.First();
        connect.Status.Should().Be(ActivityStatusCode.Error);
        connect.GetTagItem("error.type").Should().Be("ConnectionRefused");
        connect.GetTagItem("server.port").Should().Be(port);
        var connection = spans.First(s => s.OperationName == "smtp connection");
        connection.GetTagItem("error.type").Should().Be("ConnectionRefused");
        connection.Status.Should().Be(ActivityStatusCode.Error);
        FailureCount(metrics, "mailpipe.smtp.connect.failures", "ConnectionRefused").Should().BeGreaterThan(0);
    }

    [Theory]
    [InlineData(SmtpTlsMode.StartTlsRequired)]
    [InlineData(SmtpTlsMode.Implicit)]
    public async Task An_untrusted_certificate_sets_error_type_and_status_Error_on_the_tls_span(SmtpTlsMode mode)
    {
        var port = mode == SmtpTlsMode.Implicit ? TestServers.PostfixTlsPort : TestServers.PostfixPort;
        TestServers.RequireListening(port);
        var (spans, metrics, result, thrown) = await RunAsync(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = mode,
            EhloName = "client.probe16.test",
            MaxConnections = 1,
            Name = "probe16-tls-" + Guid.NewGuid().ToString("N"),
        });

        (result?.Outcome ?? SmtpSendOutcome.NotSent).Should().Be(SmtpSendOutcome.NotSent, $"{result} {thrown}");
        var tls = spans.Where(s => s.OperationName == "smtp tls").Should().NotBeEmpty().And.Subject.First();
        tls.Status.Should().Be(ActivityStatusCode.Error);
        var errorType = tls.GetTagItem("error.type").Should().BeOfType<string>().Subject;
        Enum.GetNames<SmtpErrorCode>().Should().Contain(errorType, "error.type is an SmtpErrorCode name");
        errorType.Should().NotBe("_OTHER");
        FailureCount(metrics, "mailpipe.smtp.tls.failures", errorType).Should().BeGreaterThan(0);
        var connection = spans.First(s => s.OperationName == "smtp connection");
        connection.GetTagItem("error.type").Should().Be(errorType, "the connection failed to open");
        connection.Status.Should().Be(ActivityStatusCode.Error);
    }

    [Fact]
    public async Task StartTlsRequired_without_STARTTLS_offered_sets_error_type_on_the_connection_span()
    {
        TestServers.RequireListening(TestServers.SinkPort);
        var (spans, metrics, result, thrown) = await RunAsync(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.SinkPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            EhloName = "client.probe16.test",
            MaxConnections = 1,
            Name = "probe16-notls-" + Guid.NewGuid().ToString("N"),
        });

        (result?.Outcome ?? SmtpSendOutcome.NotSent).Should().Be(SmtpSendOutcome.NotSent, $"{result} {thrown}");
        var connection = spans.Where(s => s.OperationName == "smtp connection").Should().NotBeEmpty().And.Subject.First();
        connection.GetTagItem("error.type").Should().Be("StartTlsNotOffered", "the connection failed to open");
        connection.Status.Should().Be(ActivityStatusCode.Error);
        metrics.Should().NotBeNull();
    }

    [Fact]
    public async Task A_refused_AUTH_sets_error_type_535_and_status_Error_on_the_auth_span()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new NetworkCredential(TestServers.User, "wrong-password-probe16"),
            EhloName = "client.probe16.test",
            MaxConnections = 1,
            Name = "probe16-auth-" + Guid.NewGuid().ToString("N"),
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        var (spans, metrics, result, thrown) = await RunAsync(options);

        (result?.Outcome ?? SmtpSendOutcome.NotSent).Should().Be(SmtpSendOutcome.NotSent, $"{result} {thrown}");
        var auth = spans.Where(s => s.OperationName == "smtp auth").Should().NotBeEmpty().And.Subject.First();
        auth.Status.Should().Be(ActivityStatusCode.Error);
        auth.GetTagItem("error.type").Should().Be("535");
        auth.GetTagItem("smtp.reply.code").Should().Be(535);
        auth.GetTagItem("smtp.auth.mechanism").Should().BeOfType<string>();
        FailureCount(metrics, "mailpipe.smtp.auth.failures", "535").Should().BeGreaterThan(0);

        // The pool counts it as a connection that failed to open (mailpipe.sender.connection.open_failures) and closes it: so does its span.
        var connection = spans.First(s => s.OperationName == "smtp connection");
        connection.GetTagItem("error.type").Should().Be("AuthenticationError", "the pool could not open the connection: AUTH was refused");
        connection.Status.Should().Be(ActivityStatusCode.Error);
    }

    [Fact]
    public async Task Concurrent_callers_under_their_own_activities_each_parent_their_own_transaction()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var spans = new List<Activity>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        {
            await using (var sender = new SmtpSender(new SmtpSenderOptions
            {
                Host = TestServers.Host,
                Port = TestServers.PostfixPort,
                TlsMode = SmtpTlsMode.None,
                EhloName = "client.probe16.test",
                MaxConnections = 2,
                Name = "probe16-parents-" + Guid.NewGuid().ToString("N"),
            }))
            {
                var tasks = Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
                {
                    using var request = Caller.StartActivity("request-" + i)!;
                    var result = await sender.SendAsync(SmtpMessage.FromBytes(
                        new SmtpEnvelope("probe16@example.test", TestServers.UniqueRecipient("probe16-par")),
                        "Subject: p\r\n\r\nx\r\n"u8.ToArray()));
                    result.IsAccepted.Should().BeTrue(result.ToString());
                    return request.SpanId;
                })).ToList();
                await Task.WhenAll(tasks);
            }

            tracer.ForceFlush();
        }

        var requests = spans.Where(s => s.OperationName.StartsWith("request-", StringComparison.Ordinal)).ToDictionary(s => s.SpanId);
        var transactions = spans.Where(s => s.OperationName == "smtp transaction").ToList();
        transactions.Should().HaveCount(24);
        transactions.Select(t => t.ParentSpanId).Should().OnlyHaveUniqueItems().And.OnlyContain(p => requests.ContainsKey(p));
        transactions.Should().OnlyContain(t => t.TraceId == requests[t.ParentSpanId].TraceId);
    }
}

/// <summary>breaker16's probes of the README's attribute table and the LogAddresses opt-in, through the pooled sender to Postfix 2525 (plain).</summary>
[Collection(nameof(ExporterCollection))]
public sealed class AttributeTelemetryProbeTests
{
    private static readonly ActivitySource Caller = new("MailPipe.OpenTelemetry.Tests.Probe16b");

    private static SmtpSenderOptions Plain(string name, bool logAddresses = false) => new()
    {
        Host = TestServers.Host,
        Port = TestServers.PostfixPort,
        TlsMode = SmtpTlsMode.None,
        EhloName = "client.probe16.test",
        MaxConnections = 1,
        Name = name + Guid.NewGuid().ToString("N"),
        Session = logAddresses ? new SmtpSessionOptions { LogAddresses = true } : null,
    };

    [Fact]
    public async Task Connection_and_transaction_spans_carry_every_documented_attribute_and_metrics_no_address_even_with_LogAddresses()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        var recipient = TestServers.UniqueRecipient("probe16-attr");
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var sender = new SmtpSender(Plain("probe16-attr-", logAddresses: true)))
            {
                var content = "Subject: attr\r\n\r\nHello.\r\n"u8.ToArray();
                var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("probe16-from@example.test", recipient), content));
                result.IsAccepted.Should().BeTrue(result.ToString());
            }

            meter.ForceFlush();
            tracer.ForceFlush();
        }

        var connection = spans.Single(s => s.OperationName == "smtp connection");
        connection.Kind.Should().Be(ActivityKind.Client);
        connection.GetTagItem("server.address").Should().Be(TestServers.Host);
        connection.GetTagItem("server.port").Should().Be(TestServers.PostfixPort);
        connection.GetTagItem("network.protocol.name").Should().Be("smtp");
        connection.GetTagItem("network.peer.address").Should().Be("127.0.0.1");
        connection.GetTagItem("network.peer.port").Should().Be(TestServers.PostfixPort);
        connection.GetTagItem("smtp.transactions").Should().Be(1);
        connection.Status.Should().Be(ActivityStatusCode.Unset);

        var tx = spans.Single(s => s.OperationName == "smtp transaction");
        tx.Kind.Should().Be(ActivityKind.Client);
        tx.ParentSpanId.Should().Be(default(ActivitySpanId), "no caller activity: a root");
        tx.GetTagItem("server.address").Should().Be(TestServers.Host);
        tx.GetTagItem("server.port").Should().Be(TestServers.PostfixPort);
        tx.GetTagItem("network.protocol.name").Should().Be("smtp");
        tx.GetTagItem("smtp.recipients").Should().Be(1);
        tx.GetTagItem("smtp.round_trips").Should().BeOfType<int>().Which.Should().BeGreaterThan(0);
        tx.GetTagItem("smtp.message.bytes").Should().Be(25L);
        tx.GetTagItem("error.type").Should().BeNull();
        tx.GetTagItem("smtp.mail_from").Should().Be("probe16-from@example.test");
        tx.GetTagItem("smtp.rcpt_to").Should().Be(recipient);

        foreach (var metric in metrics)
        {
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    tag.Value?.ToString().Should().NotContain("@", $"{metric.Name} {tag.Key}: metric dimensions never hold an address");
                }
            }
        }
    }

    [Fact]
    public async Task A_caller_without_an_activity_gets_a_root_transaction_even_when_coalesced_with_a_caller_that_has_one()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var spans = new List<Activity>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        {
            await using (var sender = new SmtpSender(Plain("probe16-roots-")))
            {
                var tasks = Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
                {
                    using var request = i % 2 == 0 ? Caller.StartActivity("request-" + i) : null;
                    if (request is null)
                    {
                        Activity.Current = null;
                    }

                    var result = await sender.SendAsync(SmtpMessage.FromBytes(
                        new SmtpEnvelope("probe16@example.test", TestServers.UniqueRecipient("probe16-root")),
                        Encoding.ASCII.GetBytes($"Subject: r\r\nX-Index: {i}\r\n\r\nx\r\n")));
                    result.IsAccepted.Should().BeTrue(result.ToString());
                })).ToList();
                await Task.WhenAll(tasks);
            }

            tracer.ForceFlush();
        }

        var requests = spans.Where(s => s.OperationName.StartsWith("request-", StringComparison.Ordinal)).Select(s => s.SpanId).ToHashSet();
        var transactions = spans.Where(s => s.OperationName == "smtp transaction").ToList();
        transactions.Should().HaveCount(16);
        transactions.Count(t => t.ParentSpanId == default).Should().Be(8, "the eight callers without an activity get roots");
        transactions.Where(t => t.ParentSpanId != default).Select(t => t.ParentSpanId).Should().OnlyHaveUniqueItems().And.OnlyContain(p => requests.Contains(p));
    }
    [Fact]
    public async Task An_unsampled_local_parent_drops_the_transaction_and_the_READMEs_localParentNotSampled_keeps_it()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        foreach (var remedy in new[] { false, true })
        {
            var spans = new List<Activity>();

            // The caller's own root activities are not sampled (a ratio sampler that said no); MailPipe's are children of them.
            var sampler = remedy
                ? new ParentBasedSampler(new AlwaysOffSampler(), localParentNotSampled: new AlwaysOnSampler())
                : new ParentBasedSampler(new AlwaysOffSampler());
            using (var tracer = Sdk.CreateTracerProviderBuilder().SetSampler(sampler).AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
            {
                await using (var sender = new SmtpSender(Plain("probe16-local-")))
                {
                    using var request = Caller.StartActivity("unsampled-local-request");
                    request.Should().NotBeNull("the SDK creates a propagation-only activity for a dropped root");
                    request!.Recorded.Should().BeFalse();
                    (await sender.SendAsync(SmtpMessage.FromBytes(
                        new SmtpEnvelope("probe16@example.test", TestServers.UniqueRecipient("probe16-local")), "Subject: l\r\n\r\nx\r\n"u8.ToArray()))).IsAccepted.Should().BeTrue();
                }

                tracer.ForceFlush();
            }

            if (remedy)
            {
                spans.Should().ContainSingle(s => s.OperationName == "smtp transaction");
            }
            else
            {
                spans.Should().NotContain(s => s.OperationName == "smtp transaction");
            }
        }
    }
    [Fact]
    public async Task SendBatchAsync_puts_every_transaction_under_the_callers_activity_and_leaves_it_current()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var spans = new List<Activity>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Caller.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        {
            await using (var sender = new SmtpSender(Plain("probe16-batch-")))
            {
                using var request = Caller.StartActivity("batch-request")!;
                var messages = Enumerable.Range(0, 5).Select(_ => SmtpMessage.FromBytes(
                    new SmtpEnvelope("probe16@example.test", TestServers.UniqueRecipient("probe16-batch")), "Subject: b\r\n\r\nx\r\n"u8.ToArray())).ToList();
                var results = await sender.SendBatchAsync(messages);
                results.Should().OnlyContain(r => r.IsAccepted);
                Activity.Current.Should().BeSameAs(request);
            }

            tracer.ForceFlush();
        }

        var parent = spans.Single(s => s.OperationName == "batch-request");
        spans.Where(s => s.OperationName == "smtp transaction").Should().HaveCount(5).And.OnlyContain(t => t.ParentSpanId == parent.SpanId);
    }
}
