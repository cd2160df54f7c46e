using System.Diagnostics;
using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.OpenTelemetry.Tests.Peer;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// Issue #13's acceptance 2 and 3 re-checked as a reviewer does, through the public API and the OpenTelemetry
/// in-memory exporter only (names as the package README lists them), against the real Postfix 127.0.0.1:2525.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class Acc21TelemetryTests
{
    private const string Local = "acc21-distinctive-local";
    private const string Subject = "acc21-distinctive-subject";
    private static readonly ActivitySource Callers = new("Acc21.Callers");

    private static SmtpMessage Message(string recipient) =>
        SmtpMessage.FromBytes(
            new SmtpEnvelope($"{Local}-from@example.test", recipient),
            Encoding.ASCII.GetBytes($"From: <{Local}-from@example.test>\r\nTo: <{recipient}>\r\nSubject: {Subject}\r\n\r\nHello.\r\n"));

    private static IEnumerable<string> Texts(IEnumerable<Activity> spans, IEnumerable<Metric> metrics)
    {
        foreach (var text in PeerCapture.SpanTexts(spans))
        {
            yield return text;
        }

        foreach (var metric in metrics)
        {
            foreach (var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    yield return $"{metric.Name}:{tag.Key}={tag.Value}";
                }
            }
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Coalesced_callers_each_find_their_transaction_under_their_own_activity_and_no_address_leaks_unless_opted_in(bool logAddresses)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        const int count = 8;
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        var callers = new List<(Activity Activity, string Recipient, Task<SmtpSendResult> Send)>();
        long batches;
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddSource(Callers.Name).AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var sender = new SmtpSender(new SmtpSenderOptions
            {
                Host = TestServers.Host,
                Port = TestServers.PostfixPort,
                TlsMode = SmtpTlsMode.None,
                EhloName = "client.acc21.test",
                MaxConnections = 1,
                Name = "acc21-otel-" + Guid.NewGuid().ToString("N"),
                Session = new SmtpSessionOptions { LogAddresses = logAddresses },
            }))
            {
                // Every caller calls SendAsync before the single connection is open: they queue and go together.
                for (var i = 0; i < count; i++)
                {
                    var activity = Callers.StartActivity("caller-" + i)!;
                    activity.Should().NotBeNull("the tracer provider listens to the callers' source");
                    var recipient = $"{Local}-{i}-{Guid.NewGuid():N}@example.test";
                    callers.Add((activity, recipient, sender.SendAsync(Message(recipient))));
                    Activity.Current = null; // the next caller is a sibling, not a child
                }

                foreach (var (_, _, send) in callers)
                {
                    (await send.WaitAsync(TimeSpan.FromSeconds(60))).IsAccepted.Should().BeTrue();
                }

                batches = sender.GetStatistics().Batches;
            }

            foreach (var (activity, _, _) in callers)
            {
                activity.Dispose();
            }

            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        batches.Should().BeLessThan(count, "callers waiting for the one connection are coalesced into batches");
        var transactions = spans.Where(s => s.OperationName == "smtp transaction").ToList();
        transactions.Should().HaveCount(count);
        foreach (var (activity, _, _) in callers)
        {
            transactions.Should().ContainSingle(t => t.ParentSpanId == activity.SpanId && t.TraceId == activity.TraceId, $"{activity.OperationName}'s transaction is under it");
        }

        var connection = spans.Single(s => s.OperationName == "smtp connection");
        connection.ParentSpanId.Should().Be(default(ActivitySpanId), "connection spans are roots");
        transactions.Should().OnlyContain(t => t.Links.Single().Context.SpanId == connection.SpanId);

        var mailPipeSpans = spans.Where(s => s.Source.Name == "MailPipe").ToList();
        var texts = Texts(mailPipeSpans, metrics).ToList();
        texts.Should().NotContain(t => t.Contains(Subject, StringComparison.Ordinal), "never a subject");
        metrics.SelectMany(m => Texts([], [m])).Should().NotContain(t => t.Contains('@') || t.Contains(Local, StringComparison.Ordinal), "metric dimensions never hold an address");
        if (logAddresses)
        {
            transactions.Should().OnlyContain(t => ((string?)t.GetTagItem("smtp.mail_from") ?? string.Empty).Contains(Local), "the opt-in puts the addresses on the transaction spans");
            transactions.Should().OnlyContain(t => t.GetTagItem("smtp.rcpt_to") != null);
        }
        else
        {
            texts.Should().NotContain(t => t.Contains('@') || t.Contains(Local, StringComparison.Ordinal), "no tag, event, link, baggage or dimension holds an address or a local part");
        }
    }
}
