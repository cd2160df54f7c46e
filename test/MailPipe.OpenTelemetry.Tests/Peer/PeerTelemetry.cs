using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>What the real OpenTelemetry SDK exported (in-memory exporters) while a test's body ran, and what MailPipe logged.</summary>
internal sealed class PeerCapture
{
    public List<Activity> Spans { get; } = [];

    public List<MetricSnapshot> Metrics { get; } = [];

    public List<string> Logs { get; } = [];

    public PeerLoggerFactory LoggerFactory { get; }

    public PeerCapture() => LoggerFactory = new PeerLoggerFactory(Logs);

    /// <summary>Runs <paramref name="body"/> with a tracer and a meter provider subscribed by AddMailPipeInstrumentation(); the body gets a flush it may call mid-way.</summary>
    public static async Task<PeerCapture> RunAsync(Func<PeerCapture, Func<Task>, Task> body)
    {
        var capture = new PeerCapture();
        using (var tracer = Sdk.CreateTracerProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(capture.Spans).Build())
        using (var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(capture.Metrics).Build())
        {
            await body(capture, () =>
            {
                meter.ForceFlush().Should().BeTrue();
                return Task.CompletedTask;
            });
            meter.ForceFlush().Should().BeTrue();
            tracer.ForceFlush().Should().BeTrue();
        }

        return capture;
    }

    public IEnumerable<Activity> SpansOn(int port, string name) => Spans.Where(s => s.OperationName == name && Equals(s.GetTagItem("server.port"), port));

    /// <summary>The points of the last export of <paramref name="name"/> (cumulative: the last one holds the totals).</summary>
    public List<MetricPoint> Points(string name)
    {
        var last = Metrics.LastOrDefault(m => m.Name == name);
        return last is null ? [] : [.. last.MetricPoints];
    }

    public MetricSnapshot? Last(string name) => Metrics.LastOrDefault(m => m.Name == name);

    public static bool Has(MetricPoint point, string key, object? value)
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

    public static Dictionary<string, object?> Tags(MetricPoint point)
    {
        var tags = new Dictionary<string, object?>();
        foreach (var tag in point.Tags)
        {
            tags[tag.Key] = tag.Value;
        }

        return tags;
    }

    /// <summary>The sum of a counter (or the count of a histogram) over the points with every given tag.</summary>
    public long Sum(string name, params (string Key, object? Value)[] tags)
    {
        long sum = 0;
        foreach (var point in Points(name).Where(p => tags.All(t => Has(p, t.Key, t.Value))))
        {
            var snapshot = Last(name)!;
            sum += snapshot.MetricType switch
            {
                MetricType.Histogram => point.GetHistogramCount(),
                MetricType.LongSum or MetricType.LongSumNonMonotonic => point.GetSumLong(),
                MetricType.LongGauge => point.GetGaugeLastValueLong(),
                _ => (long)point.GetSumDouble(),
            };
        }

        return sum;
    }

    /// <summary>Every text a span, an event, a link, a baggage item or a metric dimension holds.</summary>
    public IEnumerable<string> TelemetryTexts()
    {
        foreach (var text in SpanTexts(Spans))
        {
            yield return text;
        }

        foreach (var metric in Metrics)
        {
            foreach (var point in metric.MetricPoints)
            {
                foreach (var tag in point.Tags)
                {
                    yield return $"{tag.Key}={tag.Value}";
                }
            }
        }
    }

    /// <summary>Every text the spans hold: names, status descriptions, tags, baggage, events and their tags, links' tags.</summary>
    public static IEnumerable<string> SpanTexts(IEnumerable<Activity> spans)
    {
        foreach (var span in spans)
        {
            yield return span.DisplayName;
            yield return span.StatusDescription ?? string.Empty;
            foreach (var tag in span.TagObjects)
            {
                yield return $"{tag.Key}={tag.Value}";
            }

            foreach (var item in span.Baggage)
            {
                yield return $"{item.Key}={item.Value}";
            }

            foreach (var e in span.Events)
            {
                yield return e.Name;
                foreach (var tag in e.Tags)
                {
                    yield return $"{tag.Key}={tag.Value}";
                }
            }

            foreach (var link in span.Links)
            {
                foreach (var tag in link.Tags ?? [])
                {
                    yield return $"{tag.Key}={tag.Value}";
                }
            }
        }
    }
}

/// <summary>An ILoggerFactory that keeps every formatted message and exception text (all levels).</summary>
internal sealed class PeerLoggerFactory(List<string> logs) : ILoggerFactory
{
    public void AddProvider(ILoggerProvider provider)
    {
    }

    public ILogger CreateLogger(string categoryName) => new Logger(logs, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(List<string> logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(";", pairs.Select(p => $"{p.Key}={p.Value}")) : string.Empty;
            lock (logs)
            {
                logs.Add($"{category} {eventId.Id} {formatter(state, exception)} {values} {exception}");
            }
        }
    }
}

internal static class PeerOptions
{
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static SmtpSenderOptions Plain(int port, ILoggerFactory? logs = null, bool chunking = true, bool logAddresses = false) => new()
    {
        Host = TestServers.Host,
        Port = port,
        TlsMode = SmtpTlsMode.None,
        EhloName = "client.peer-otel.test",
        MaxConnections = 1,
        Name = "peer-otel-" + Guid.NewGuid().ToString("N"),
        LoggerFactory = logs,
        Session = new SmtpSessionOptions { UseChunking = chunking, LogAddresses = logAddresses, LoggerFactory = logs, AllowCleartextAuthentication = true },
    };

    public static SmtpSenderOptions Tls(int port, SmtpTlsMode mode, ILoggerFactory? logs = null)
    {
        var options = Plain(port, logs);
        options.TlsMode = mode;
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }
}
