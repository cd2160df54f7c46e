using System.Diagnostics;
using MailPipe.Extensions.Tests.Support;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// breaker21: MailPipe.OpenTelemetry's README ("Spans at shutdown") says the connection spans that the sender's disposal
/// ends are exported when the tracer provider is made before the sender. The package's own start-up check made the
/// sender when the host started it: registered before AddOpenTelemetry (AddMailPipe first, the natural order of the
/// two READMEs), that was before OpenTelemetry's hosted service made the providers, and the spans were lost.
/// </summary>
public sealed class Breaker21TelemetryOrderTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task The_connection_span_ended_at_shutdown_is_exported_whichever_of_AddMailPipe_and_AddOpenTelemetry_comes_first(bool mailPipeFirst)
    {
        TestServers.RequireListening(TestServers.PostfixPort);

        // Through a relay of its own: the tracer provider records every MailPipe span in the process, and the other tests
        // running alongside open connections to Postfix too (a loaded run saw two on port 2525 where one was asserted).
        await using var relay = new LoopbackRelay(TestServers.PostfixPort);
        var spans = new List<Activity>();
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        void AddMailPipe() => builder.Services.AddMailPipe(o =>
        {
            o.Host = "127.0.0.1";
            o.Port = relay.Port;
            o.TlsMode = SmtpTlsMode.None;
        });
        void AddOpenTelemetry() => builder.Services.AddOpenTelemetry().WithTracing(t => t.AddMailPipeInstrumentation().AddInMemoryExporter(spans));
        if (mailPipeFirst)
        {
            AddMailPipe();
            AddOpenTelemetry();
        }
        else
        {
            AddOpenTelemetry();
            AddMailPipe();
        }

        var host = builder.Build();
        await host.StartAsync();
        var result = await host.Services.GetRequiredService<ISmtpSender>().SendAsync(new SmtpEnvelope("b21@example.test", TestServers.UniqueRecipient("b21-order")), "Subject: b21\r\n\r\nx\r\n"u8.ToArray());
        result.IsAccepted.Should().BeTrue(result.ToString());
        await host.StopAsync();
        await ((IAsyncDisposable)host).DisposeAsync();

        spans.Should().Contain(s => s.OperationName == "smtp transaction");
        spans.Should().ContainSingle(s => s.OperationName == "smtp connection" && Equals(s.GetTagItem("server.port"), relay.Port),
            "the connection closed with QUIT at shutdown ends its span while the tracer provider still exports");
    }
}
