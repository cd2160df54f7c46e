using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>
/// The sample web API in-process (WebApplicationFactory), configured only through the Smtp keys it documents (as
/// settings, the in-process twin of the environment variables Smtp__Host, ...), with every log entry captured.
/// </summary>
public sealed class SampleApp(IReadOnlyDictionary<string, string?> settings, TimeSpan? shutdownTimeout = null, TimeProvider? consumerClock = null) : WebApplicationFactory<Program>
{
    public LogCapture Logs { get; } = new();

    /// <summary>Postfix on <paramref name="port"/> with STARTTLS, the test CA file and the given extra settings.</summary>
    public static SampleApp ForPostfix(int port, params (string Key, string? Value)[] extra)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Smtp:Host"] = TestServers.Host,
            ["Smtp:Port"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Smtp:TlsMode"] = "StartTlsRequired",
            ["Smtp:Tls:CaFile"] = TestServers.TlsCertificate,
        };
        foreach (var (key, value) in extra)
        {
            settings[key] = value;
        }

        return new SampleApp(settings);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }

        builder.ConfigureServices(services =>
        {
            services.AddSingleton<ILoggerProvider>(Logs);
            services.Configure<LoggerFilterOptions>(o => o.MinLevel = LogLevel.Trace);
            if (shutdownTimeout is { } timeout)
            {
                services.Configure<HostOptions>(o => o.ShutdownTimeout = timeout);
            }

            if (consumerClock is not null)
            {
                // The queue consumer's clock only (its shutdown deadline); the sender keeps the real one.
                var consumer = services.Single(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(MailPipe.Samples.WebApi.MailQueueConsumer));
                services.Remove(consumer);
                services.AddSingleton<IHostedService>(sp => ActivatorUtilities.CreateInstance<MailPipe.Samples.WebApi.MailQueueConsumer>(sp, consumerClock));
            }
        });
    }
}
