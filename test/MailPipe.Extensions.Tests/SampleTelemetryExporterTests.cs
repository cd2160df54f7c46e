using MailPipe.Extensions.Tests.Support;
using MailPipe.Samples.WebApi;
using Microsoft.Extensions.DependencyInjection;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// breaker16: the sample's Telemetry:Exporter is documented as console, inmemory or none. Another value (a typo, or
/// "otlp" which it does not wire) must stop the start naming the key, not silently keep every span and metric point
/// in an in-memory list that grows for as long as the service runs.
/// </summary>
public sealed class SampleTelemetryExporterTests
{
    [Theory]
    [InlineData("otlp")]
    [InlineData("consle")]
    public void An_unknown_exporter_stops_the_start_naming_the_key(string exporter)
    {
        using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("Smtp:TlsMode", "None"), ("Telemetry:Exporter", exporter));

        var start = () => app.CreateClient();

        start.Should().Throw<InvalidOperationException>().Which.Message.Should().Be(
            $"Telemetry:Exporter '{exporter}' is not an exporter of this sample. Use one of: console, inmemory, none (environment variable Telemetry__Exporter).");
    }

    [Theory]
    [InlineData("None", false)]
    [InlineData("CONSOLE", null)]
    [InlineData("InMemory", true)]
    public void The_documented_exporters_are_taken_in_any_case(string exporter, bool? store)
    {
        using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("Smtp:TlsMode", "None"), ("Telemetry:Exporter", exporter));

        using var client = app.CreateClient();

        if (store is { } expected)
        {
            (app.Services.GetService<TelemetryStore>() is not null).Should().Be(expected);
        }
    }
}
