using System.Diagnostics.Metrics;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Breaker probe (session 16): GetStatistics() "returns the same numbers" as the instruments. A connection still being
/// opened when the sender is disposed (its open cancelled) counted as an open failure in the statistics but not in
/// <c>mailpipe.sender.connection.open_failures</c>; it is no failure of the server, and now neither counts it.
/// </summary>
public sealed class Breaker16OpenCancelledCountTests
{
    [Fact]
    public async Task An_open_cancelled_by_the_disposal_is_no_open_failure_in_the_statistics_nor_in_the_metric()
    {
        await using var server = new LoopbackSmtpServer { Silent = true }; // accepts, never greets
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Name = "open-cancelled-" + Guid.NewGuid().ToString("N");
        long metricFailures = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SmtpSender.MeterName && instrument.Name == "mailpipe.sender.connection.open_failures")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "mailpipe.sender.name" && Equals(tag.Value, options.Name))
                {
                    Interlocked.Add(ref metricFailures, value);
                }
            }
        });
        listener.Start();
        var sender = new SmtpSender(options);

        var send = sender.SendAsync(PoolTestMessages.Create("open-cancelled", 0).Message);
        await server.WaitUntilAsync(s => s.Connections == 1);
        sender.GetStatistics().Opening.Should().Be(1);
        await sender.DisposeAsync();

        await FluentActions.Awaiting(() => send.WaitAsync(TimeSpan.FromSeconds(30))).Should().ThrowAsync<ObjectDisposedException>();
        var statistics = sender.GetStatistics();
        statistics.Opening.Should().Be(0);
        statistics.OpenFailures.Should().Be(Interlocked.Read(ref metricFailures), "the statistics are the metrics' numbers");
        statistics.OpenFailures.Should().Be(0, "the server did not fail: the sender was disposed while it waited for the greeting");
    }
}
