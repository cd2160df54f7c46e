using System.Diagnostics;
using System.Diagnostics.Metrics;
using MailPipe.Tests.Pooling;

namespace MailPipe.Tests.Diagnostics;

/// <summary>
/// brk15res: a listener whose callback throws (an <see cref="ActivityListener"/>'s Sample, ActivityStarted or
/// ActivityStopped, a <see cref="MeterListener"/>'s measurement callback: another APM agent, a home-made metrics
/// listener) runs inside MailPipe's StartActivity, Stop, Add and Record. Before, one that threw when the transaction span
/// stopped, or on mailpipe.smtp.messages, after the server had accepted the message, left the caller's SendAsync (and
/// the sender's DisposeAsync) waiting for ever; one that threw when the span started made the message NotSent (the pool
/// tried twice). Telemetry loses the span or measurement, never the send.
/// </summary>
[Collection(nameof(TelemetryCollection))]
public sealed class Brk15ThrowingListenerTests
{
    [Theory]
    [InlineData("sample", MailPipeTelemetry.TransactionSpan)]
    [InlineData("started", MailPipeTelemetry.TransactionSpan)]
    [InlineData("stopped", MailPipeTelemetry.TransactionSpan)]
    [InlineData("started", MailPipeTelemetry.ConnectionSpan)]
    [InlineData("started", MailPipeTelemetry.ConnectSpan)]
    [InlineData("stopped", MailPipeTelemetry.ConnectSpan)]
    [InlineData("stopped", MailPipeTelemetry.ConnectionSpan)]
    [InlineData("measurement", "mailpipe.smtp.messages")]
    [InlineData("measurement", "mailpipe.smtp.transaction.duration")]
    [InlineData("measurement", "mailpipe.smtp.connect.duration")]
    [InlineData("measurement", "mailpipe.smtp.connection.duration")]
    [InlineData("measurement", "mailpipe.sender.connection.opened")]
    [InlineData("measurement", "mailpipe.sender.batch.size")]
    public async Task A_listener_that_throws_loses_its_telemetry_never_the_send(string where, string what)
    {
        await using var server = new LoopbackSmtpServer();
        using var activities = new ActivityListener
        {
            ShouldListenTo = s => s.Name == MailPipeDiagnostics.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> o) => where == "sample" && o.Name == what ? throw new InvalidOperationException("sample") : ActivitySamplingResult.AllDataAndRecorded,
            ActivityStarted = a => ThrowIf(where == "started" && a.OperationName == what),
            ActivityStopped = a => ThrowIf(where == "stopped" && a.OperationName == what),
        };
        ActivitySource.AddActivityListener(activities);
        using var meters = new MeterListener { InstrumentPublished = Enable };
        meters.SetMeasurementEventCallback<long>((i, _, _, _) => ThrowIf(where == "measurement" && i.Name == what));
        meters.SetMeasurementEventCallback<double>((i, _, _, _) => ThrowIf(where == "measurement" && i.Name == what));
        meters.SetMeasurementEventCallback<int>((i, _, _, _) => ThrowIf(where == "measurement" && i.Name == what));
        meters.Start();

        var (message, id) = PoolTestMessages.Create("brk15-listener", 1);
        var sender = new SmtpSender(PoolTestMessages.Options(server.Port, maxConnections: 1));
        var result = await sender.SendAsync(message).WaitAsync(TimeSpan.FromSeconds(30));
        var again = await sender.SendAsync(PoolTestMessages.Create("brk15-listener", 2).Message).WaitAsync(TimeSpan.FromSeconds(30));
        await sender.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the server accepted it; a listener's failure is not the send's");
        result.Attempts.Should().Be(1);
        again.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the connection and the pool carry on");
        server.CountOf(id).Should().Be(1);
    }

    private static void Enable(Instrument instrument, MeterListener listener)
    {
        if (instrument.Meter.Name == MailPipeDiagnostics.MeterName)
        {
            listener.EnableMeasurementEvents(instrument);
        }
    }

    private static void ThrowIf(bool condition)
    {
        if (condition)
        {
            throw new InvalidOperationException("A listener's callback failed.");
        }
    }
}
