using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace MailPipe;

/// <summary>
/// The pool's instruments on the <c>MailPipe</c> meter, tagged <c>mailpipe.sender.name</c>:
/// <c>mailpipe.sender.connection.count</c> (observable up-down counter, tag <c>state</c> = idle, used, opening),
/// <c>mailpipe.sender.connection.max</c>, <c>mailpipe.sender.pending_requests</c> (messages waiting for a connection),
/// <c>mailpipe.sender.connection.opened</c>, <c>mailpipe.sender.connection.open_failures</c>,
/// <c>mailpipe.sender.connection.discarded</c> (tag <c>reason</c>, see <see cref="SmtpSenderDiscardReason"/>),
/// <c>mailpipe.sender.retries</c> and the histogram <c>mailpipe.sender.batch.size</c> (messages per batch).
/// </summary>
internal sealed class SmtpSenderMetrics : IDisposable
{
    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?> _name;
    private readonly Counter<long> _opened;
    private readonly Counter<long> _openFailures;
    private readonly Counter<long> _discarded;
    private readonly Counter<long> _retries;
    private readonly Histogram<int> _batchSize;

    public SmtpSenderMetrics(SmtpSender sender, IMeterFactory? meterFactory)
    {
        _meter = meterFactory?.Create(SmtpSender.MeterName) ?? new Meter(SmtpSender.MeterName);
        _ownsMeter = meterFactory is null;
        _name = new("mailpipe.sender.name", sender.Name);
        var name = _name;
        _meter.CreateObservableUpDownCounter<int>(
            "mailpipe.sender.connection.count",
            () =>
            {
                var s = sender.GetStatistics();
                return (Measurement<int>[])
                [
                    new Measurement<int>(s.Idle, name, new("state", "idle")),
                    new Measurement<int>(s.InUse, name, new("state", "used")),
                    new Measurement<int>(s.Opening, name, new("state", "opening")),
                ];
            },
            "{connection}",
            "Connections of the pool by state.");
        _meter.CreateObservableUpDownCounter("mailpipe.sender.connection.max", () => new Measurement<int>(sender.MaxConnections, name), "{connection}", "The most connections the pool opens.");
        _meter.CreateObservableUpDownCounter("mailpipe.sender.pending_requests", () => new Measurement<int>(sender.GetStatistics().PendingRequests, name), "{message}", "Messages waiting for a connection.");
        _opened = _meter.CreateCounter<long>("mailpipe.sender.connection.opened", "{connection}", "Connections opened (greeting, EHLO, TLS and AUTH done).");
        _openFailures = _meter.CreateCounter<long>("mailpipe.sender.connection.open_failures", "{connection}", "Connection attempts that failed.");
        _discarded = _meter.CreateCounter<long>("mailpipe.sender.connection.discarded", "{connection}", "Connections closed by the pool, by reason.");
        _retries = _meter.CreateCounter<long>("mailpipe.sender.retries", "{message}", "Messages sent again on a fresh connection after their connection failed before anything could be delivered.");
        _batchSize = _meter.CreateHistogram<int>("mailpipe.sender.batch.size", "{message}", "Messages a connection took at once (callers coalesced into one pipelined batch).");
    }

    public void Opened() => _opened.Add(1, _name);

    public void OpenFailed() => _openFailures.Add(1, _name);

    public void Discarded(string reason) => _discarded.Add(1, _name, new("reason", reason));

    public void Retried() => _retries.Add(1, _name);

    public void Batch(int size) => _batchSize.Record(size, _name);

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }
}
