using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.Samples.WebApi;

/// <summary>
/// Where the in-memory exporter puts what it exports (for the tests, and to look at in a debugger). The exporter adds
/// on the thread that ends a span or exports metrics, at any time (the listeners take the spans of every MailPipe
/// sender and request in the process): read a list only while holding its lock (<c>lock (store.Spans)</c>); the
/// exporter adds under the same lock.
/// </summary>
public sealed class TelemetryStore
{
    /// <summary>The finished spans. Lock the list while reading it.</summary>
    public List<Activity> Spans { get; } = [];

    /// <summary>The exported metric points. Lock the list while reading it.</summary>
    public List<Metric> Metrics { get; } = [];
}

/// <summary>The sample's OpenTelemetry set-up: MailPipe's and ASP.NET Core's spans and metrics to the exporter chosen by configuration.</summary>
public static class TelemetrySetup
{
    /// <summary>
    /// Reads <c>Telemetry:Exporter</c>: <c>console</c>, <c>inmemory</c> (the spans and metrics in the
    /// <see cref="TelemetryStore"/> singleton) or <c>none</c> (the default: no provider at all), in any case.
    /// </summary>
    /// <param name="builder">The application builder.</param>
    /// <returns><paramref name="builder"/>.</returns>
    /// <exception cref="InvalidOperationException"><c>Telemetry:Exporter</c> is another value.</exception>
    public static WebApplicationBuilder AddSampleTelemetry(this WebApplicationBuilder builder)
    {
        var exporter = builder.Configuration["Telemetry:Exporter"]?.ToUpperInvariant() ?? "NONE";
        if (exporter == "NONE")
        {
            return builder;
        }

        if (exporter is not ("CONSOLE" or "INMEMORY"))
        {
            // Not silently the in-memory store: it keeps every span and metric point for as long as the service runs.
            throw new InvalidOperationException($"Telemetry:Exporter '{builder.Configuration["Telemetry:Exporter"]}' is not an exporter of this sample. Use one of: console, inmemory, none (environment variable Telemetry__Exporter).");
        }

        builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddMailPipeInstrumentation())
            .WithMetrics(metrics => metrics.AddMailPipeInstrumentation());

        var store = new TelemetryStore();
        builder.Services.AddSingleton(store);
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing =>
        {
            tracing.AddAspNetCoreInstrumentation();
            _ = exporter == "CONSOLE" ? tracing.AddConsoleExporter() : tracing.AddInMemoryExporter(new LockedCollection<Activity>(store.Spans));
        });
        builder.Services.ConfigureOpenTelemetryMeterProvider(metrics =>
        {
            metrics.AddAspNetCoreInstrumentation();
            _ = exporter == "CONSOLE" ? metrics.AddConsoleExporter() : metrics.AddInMemoryExporter(new LockedCollection<Metric>(store.Metrics));
        });
        return builder;
    }
}

/// <summary>A list seen through its own lock: what the in-memory exporter adds, readers that lock the list see whole.</summary>
/// <typeparam name="T">The item type.</typeparam>
internal sealed class LockedCollection<T>(List<T> items) : ICollection<T>
{
    public int Count
    {
        get
        {
            lock (items)
            {
                return items.Count;
            }
        }
    }

    public bool IsReadOnly => false;

    public void Add(T item)
    {
        lock (items)
        {
            items.Add(item);
        }
    }

    public void Clear()
    {
        lock (items)
        {
            items.Clear();
        }
    }

    public bool Contains(T item)
    {
        lock (items)
        {
            return items.Contains(item);
        }
    }

    public void CopyTo(T[] array, int arrayIndex)
    {
        lock (items)
        {
            items.CopyTo(array, arrayIndex);
        }
    }

    public bool Remove(T item)
    {
        lock (items)
        {
            return items.Remove(item);
        }
    }

    /// <summary>Enumerates a copy taken under the lock.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        lock (items)
        {
            return items.ToList().GetEnumerator();
        }
    }

    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
