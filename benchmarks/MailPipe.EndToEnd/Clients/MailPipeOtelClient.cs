using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// <c>mailpipe-sendbatch</c> with OpenTelemetry attached (issue #13): a tracer provider (AlwaysOn sampler, batch
/// processor, an exporter that counts spans) and a meter provider (in-memory exporter) subscribed with
/// <c>AddMailPipeInstrumentation()</c>, so that every transaction builds its span and records its measurements.
/// Run beside <c>mailpipe-sendbatch</c> in the same rounds to see the overhead.
/// </summary>
internal sealed class MailPipeOtelClient : InProcessClientRunner
{
    public override string Name => "mailpipe-sendbatch-otel";

    public override string Description => "mailpipe-sendbatch with an OpenTelemetry tracer (AlwaysOn, every span exported to a counting exporter) and meter provider attached";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var exporter = new CountingExporter();
        var tracer = Sdk.CreateTracerProviderBuilder()
            .SetSampler(new AlwaysOnSampler())
            .AddMailPipeInstrumentation()
            .AddProcessor(new BatchActivityExportProcessor(exporter))
            .Build()!;
        var metrics = new List<Metric>();
        var meter = Sdk.CreateMeterProviderBuilder().AddMailPipeInstrumentation().AddInMemoryExporter(metrics).Build()!;
        var session = new AsyncSmtpSession();
        await session.ConnectAsync("127.0.0.1", port, cancellationToken: cancellationToken);
        Expect(250, (await session.EhloAsync("client.example.test", cancellationToken)).Code, "EHLO");
        var envelope = new SmtpEnvelope(Workload.Sender, [.. workload.Recipients]);
        return new BatchSession(session, SmtpMessage.FromBytes(envelope, workload.Message), tracer, meter, exporter);
    }

    private sealed class BatchSession(AsyncSmtpSession session, SmtpMessage message, TracerProvider tracer, MeterProvider meter, CountingExporter exporter) : IBatchClientSession
    {
        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            throw new NotSupportedException("A batch client.");

        public async Task SendBatchAsync(int count, CancellationToken cancellationToken)
        {
            var results = await session.SendBatchAsync(Enumerable.Repeat(message, count), cancellationToken);
            foreach (var result in results)
            {
                if (!result.IsAccepted)
                {
                    throw new InvalidOperationException($"Message not accepted: {result}");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await session.QuitAsync();
            await session.DisposeAsync();
            tracer.ForceFlush();
            meter.ForceFlush();
            tracer.Dispose();
            meter.Dispose();
            if (exporter.Spans == 0)
            {
                throw new InvalidOperationException("No span was exported: the listener was not attached.");
            }
        }
    }

    private sealed class CountingExporter : BaseExporter<Activity>
    {
        public long Spans;

        public override ExportResult Export(in Batch<Activity> batch)
        {
            foreach (var activity in batch)
            {
                _ = activity;
                Spans++;
            }

            return ExportResult.Success;
        }
    }
}
