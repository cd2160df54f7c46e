using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace MailPipe.Tests.Pooling;

/// <summary>The pool's instruments on the "MailPipe" meter, as a telemetry exporter sees them.</summary>
public sealed class SmtpSenderMetricsTests
{
    [Fact]
    public async Task The_pool_reports_connections_by_state_pending_requests_opened_and_discarded_by_reason()
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Name = "metrics-test-" + Guid.NewGuid().ToString("N");
        options.MaxMessagesPerConnection = 2;
        var measurements = new ConcurrentBag<(string Instrument, long Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SmtpSender.MeterName && instrument.Name.StartsWith("mailpipe.sender.", StringComparison.Ordinal))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(Instrument instrument, long value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var dictionary = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                dictionary[tag.Key] = tag.Value;
            }

            if (Equals(dictionary.GetValueOrDefault("mailpipe.sender.name"), options.Name))
            {
                measurements.Add((instrument.Name, value, dictionary));
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<int>((i, v, t, _) => Record(i, v, t));
        listener.Start();

        await using (var sender = new SmtpSender(options))
        {
            for (var i = 0; i < 3; i++)
            {
                (await sender.SendAsync(PoolTestMessages.Create("metrics", i).Message)).IsAccepted.Should().BeTrue();
            }

            // The worker puts the connection back after the caller has its result: wait for that, not for a while.
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            while (sender.GetStatistics().Idle != 1)
            {
                await Task.Delay(10, limit.Token);
            }

            listener.RecordObservableInstruments();
        }

        measurements.Where(m => m.Instrument == "mailpipe.sender.connection.opened").Sum(m => m.Value).Should().Be(2);
        measurements.Should().Contain(m => m.Instrument == "mailpipe.sender.connection.discarded" && (string?)m.Tags["mailpipe.sender.connection.discard_reason"] == SmtpSenderDiscardReason.MaxMessages);
        measurements.Should().Contain(m => m.Instrument == "mailpipe.sender.connection.count" && (string?)m.Tags["mailpipe.sender.connection.state"] == "idle" && m.Value == 1);
        measurements.Should().Contain(m => m.Instrument == "mailpipe.sender.connection.count" && (string?)m.Tags["mailpipe.sender.connection.state"] == "used");
        measurements.Should().Contain(m => m.Instrument == "mailpipe.sender.pending_requests" && m.Value == 0);
        measurements.Should().Contain(m => m.Instrument == "mailpipe.sender.connection.max" && m.Value == 1);
        measurements.Where(m => m.Instrument == "mailpipe.sender.batch.size").Sum(m => m.Value).Should().Be(3);

        // OpenTelemetry's naming rules (semantic conventions, general/naming.md): attribute names are namespaced; a
        // bare "state" or "reason" clashes with other libraries' on the same backend (the database conventions renamed
        // their pool's "state" to db.client.connection.state for that reason).
        measurements.SelectMany(m => m.Tags.Keys).Distinct().Should().OnlyContain(key => key.Contains('.'));
    }
}
