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
/// Issue #13's acceptance 1 from the README's side, as a reviewer checks it: every span name, span attribute, event,
/// instrument and metric dimension that the in-memory exporter sees for sends against the real Postfix (submission
/// 5870 with STARTTLS and AUTH: one accepted, one refused recipient; a wrong password; a closed port) is named in
/// src/MailPipe.OpenTelemetry/README.md.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class Acc21TelemetryReadmeTests
{
    private static string Readme()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var path = Path.Combine(directory.FullName, "src", "MailPipe.OpenTelemetry", "README.md");
            if (File.Exists(path))
            {
                return File.ReadAllText(path);
            }
        }

        throw new FileNotFoundException("src/MailPipe.OpenTelemetry/README.md above " + AppContext.BaseDirectory);
    }

    private static SmtpSenderOptions Submission(string password)
    {
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new NetworkCredential(TestServers.User, password),
            EhloName = "client.acc21.test",
            MaxConnections = 1,
            Name = "acc21-readme-" + Guid.NewGuid().ToString("N"),
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    private static SmtpMessage Message(string recipient) =>
        SmtpMessage.FromBytes(new SmtpEnvelope("acc21-from@example.test", recipient), Encoding.ASCII.GetBytes("Subject: acc21\r\n\r\nHello.\r\n"));

    [Fact]
    public async Task Every_name_the_exporter_sees_is_in_the_package_README()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var spans = new List<Activity>();
        var metrics = new List<Metric>();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            await using (var sender = new SmtpSender(Submission(TestServers.Password)))
            {
                (await sender.SendAsync(Message(TestServers.UniqueRecipient("acc21-readme")))).IsAccepted.Should().BeTrue();
                (await sender.SendAsync(Message($"unknown-acc21-{Guid.NewGuid():N}@example.test"))).Outcome.Should().Be(SmtpSendOutcome.Refused);
                meter.ForceFlush(); // the observable pool instruments while the sender lives
            }

            await using (var wrong = new SmtpSender(Submission("not-the-password")))
            {
                (await wrong.SendAsync(Message(TestServers.UniqueRecipient("acc21-readme")))).Outcome.Should().Be(SmtpSendOutcome.NotSent);
            }

            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var closed = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            await using (var refused = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = closed, TlsMode = SmtpTlsMode.None, EhloName = "client.acc21.test" }))
            {
                (await refused.SendAsync(Message("x@example.test"))).Outcome.Should().Be(SmtpSendOutcome.NotSent);
            }

            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        var readme = Readme();
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var span in spans.Where(s => s.Source.Name == "MailPipe"))
        {
            names.Add(span.OperationName);
            foreach (var tag in span.TagObjects)
            {
                names.Add(tag.Key);
            }

            foreach (var e in span.Events)
            {
                names.Add(e.Name);
            }
        }

        foreach (var metric in metrics)
        {
            metric.MeterName.Should().Be("MailPipe");
            names.Add(metric.Name);
            foreach (var point in metric.GetMetricPoints())
            {
                foreach (var tag in point.Tags)
                {
                    names.Add(tag.Key);
                }
            }
        }

        names.Should().Contain(["smtp connection", "smtp connect", "smtp tls", "smtp auth", "smtp transaction", "error.type", "mailpipe.smtp.auth.failures", "mailpipe.smtp.connect.failures"]);
        names.Where(n => !readme.Contains($"`{n}`", StringComparison.Ordinal))
            .Should().BeEmpty("every emitted name is documented in the README (names seen: " + string.Join(", ", names) + ")");
    }
}
