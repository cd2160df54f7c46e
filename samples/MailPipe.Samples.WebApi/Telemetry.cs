using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.Samples.WebApi;

/// <summary>Where the in-memory exporter puts what it exports (for the tests, and to look at in a debugger).</summary>
public sealed class TelemetryStore
{
    /// <summary>The finished spans.</summary>
    public List<Activity> Spans { get; } = [];

    /// <summary>The exported metric points.</summary>
    public List<Metric> Metrics { get; } = [];
}

/// <summary>The sample's OpenTelemetry set-up: MailPipe's and ASP.NET Core's spans and metrics to the exporter chosen by configuration.</summary>
public static class TelemetrySetup
{
    /// <summary>
    /// Reads <c>Telemetry:Exporter</c>: <c>console</c>, <c>inmemory</c> (the spans and metrics in the
    /// <see cref="TelemetryStore"/> singleton) or <c>none</c> (the default: no provider at all).
    /// </summary>
    /// <param name="builder">The application builder.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static WebApplicationBuilder AddSampleTelemetry(this WebApplicationBuilder builder)
    {
        var exporter = builder.Configuration["Telemetry:Exporter"]?.ToUpperInvariant() ?? "NONE";
        if (exporter == "NONE")
        {
            return builder;
        }

        builder.Services.AddOpenTelemetry()
            .WithTracing(tracing => tracing.AddMailPipeInstrumentation())
            .WithMetrics(metrics => metrics.AddMailPipeInstrumentation());

        var store = new TelemetryStore();
        builder.Services.AddSingleton(store);
        builder.Services.ConfigureOpenTelemetryTracerProvider(tracing =>
        {
            tracing.AddAspNetCoreInstrumentation();
            _ = exporter == "CONSOLE" ? tracing.AddConsoleExporter() : tracing.AddInMemoryExporter(store.Spans);
        });
        builder.Services.ConfigureOpenTelemetryMeterProvider(metrics =>
        {
            metrics.AddAspNetCoreInstrumentation();
            _ = exporter == "CONSOLE" ? metrics.AddConsoleExporter() : metrics.AddInMemoryExporter(store.Metrics);
        });
        return builder;
    }
}
