using System.Text;
using MailPipe.IntegrationTests.Support;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace MailPipe.OpenTelemetry.Tests;

/// <summary>
/// The duration histograms are in seconds (unit <c>s</c>, as the OpenTelemetry semantic conventions ask). The SDK's
/// default buckets (0, 5, 10, 25, ... 10000) are made for milliseconds: without bucket advice every SMTP duration of
/// less than 5 s lands in the first bucket and the histogram says nothing. Each instrument carries the semantic
/// conventions' advice for second-valued durations (0.005 ... 10), as ASP.NET Core's and HttpClient's do.
/// </summary>
[Collection(nameof(ExporterCollection))]
public sealed class HistogramBucketTests
{
    private static readonly double[] SecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

    [Fact]
    public async Task Histograms_have_bucket_boundaries_for_their_unit()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var metrics = new List<Metric>();
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build())
        {
            var options = new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.AiosmtpdPort, TlsMode = SmtpTlsMode.None, MaxConnections = 1, Name = "buckets-" + Guid.NewGuid().ToString("N") };
            await using (var sender = new SmtpSender(options))
            {
                var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("buckets@example.test", "rcpt@example.test"), Encoding.ASCII.GetBytes("Subject: buckets\r\n\r\nHello.\r\n")));
                result.IsAccepted.Should().BeTrue(result.ToString());
            }

            meter.ForceFlush().Should().BeTrue();
        }

        foreach (var name in new[] { "mailpipe.smtp.transaction.duration", "mailpipe.smtp.connection.duration", "mailpipe.smtp.connect.duration" })
        {
            var metric = metrics.Last(m => m.Name == name);
            metric.Unit.Should().Be("s");
            var bounds = new List<double>();
            foreach (ref readonly var point in metric.GetMetricPoints())
            {
                foreach (var bucket in point.GetHistogramBuckets())
                {
                    bounds.Add(bucket.ExplicitBound);
                }

                break;
            }

            if (name == "mailpipe.smtp.connection.duration")
            {
                // Connections live for minutes (MaxLifetime 10 min by default): buckets up to 600 s.
                bounds.Should().Contain([0.01, 1, 60, 600], name).And.NotContain(5000, name);
            }
            else
            {
                bounds.Should().StartWith(SecondsBuckets, name);
            }
        }

        // Batch sizes (MaxBatchSize 16 by default): the SDK's default buckets put 1 (no coalescing) and 5 in one.
        var batch = metrics.Last(m => m.Name == "mailpipe.sender.batch.size");
        var batchBounds = new List<double>();
        foreach (ref readonly var point in batch.GetMetricPoints())
        {
            foreach (var bucket in point.GetHistogramBuckets())
            {
                batchBounds.Add(bucket.ExplicitBound);
            }

            break;
        }

        batchBounds.Should().StartWith([1, 2, 4, 8, 16]);
    }
}
