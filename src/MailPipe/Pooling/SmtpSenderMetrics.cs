using System.Diagnostics.Metrics;

namespace MailPipe;

/// <summary>
/// The pool's instruments on the <c>MailPipe</c> meter, tagged <c>mailpipe.sender.name</c>:
/// <c>mailpipe.sender.connection.count</c> (observable up-down counter, tag <c>mailpipe.sender.connection.state</c> = idle, used, opening),
/// <c>mailpipe.sender.connection.max</c>, <c>mailpipe.sender.pending_requests</c> (messages waiting for a connection),
/// <c>mailpipe.sender.connection.opened</c>, <c>mailpipe.sender.connection.open_failures</c>,
/// <c>mailpipe.sender.connection.discarded</c> (tag <c>mailpipe.sender.connection.discard_reason</c>, see <see cref="SmtpSenderDiscardReason"/>),
/// <c>mailpipe.sender.retries</c> and the histogram <c>mailpipe.sender.batch.size</c> (messages per batch).
/// The instruments are made once per meter (<see cref="MailPipeMetrics"/>); a sender registers for the observable ones
/// and leaves at disposal.
/// </summary>
internal sealed class SmtpSenderMetrics : IObservedPool, IDisposable
{
    // Namespaced, as OpenTelemetry's naming rules ask (a bare "state" clashes with other libraries' on one backend).
    private const string StateKey = "mailpipe.sender.connection.state";
    private static readonly KeyValuePair<string, object?> Idle = new(StateKey, "idle");
    private static readonly KeyValuePair<string, object?> Used = new(StateKey, "used");
    private static readonly KeyValuePair<string, object?> Opening = new(StateKey, "opening");
    private readonly MailPipeMetrics _metrics;
    private readonly SmtpSender _sender;
    private readonly KeyValuePair<string, object?> _name;
    private int _disposed;

    public SmtpSenderMetrics(SmtpSender sender, IMeterFactory? meterFactory)
    {
        _sender = sender;
        _metrics = MailPipeMetrics.For(meterFactory);
        _name = new("mailpipe.sender.name", sender.Name);
        _metrics.Register(this);
    }

    public string Name => _sender.Name;

    public void Opened() => Count(_metrics.PoolOpened, _name, default);

    public void OpenFailed() => Count(_metrics.PoolOpenFailures, _name, default);

    public void Discarded(string reason) => Count(_metrics.PoolDiscarded, _name, new("mailpipe.sender.connection.discard_reason", reason));

    public void Retried() => Count(_metrics.PoolRetries, _name, default);

    public void Batch(int size)
    {
        try
        {
            _metrics.PoolBatchSize.Record(size, _name);
        }
        catch (Exception)
        {
            // A listener's measurement callback threw: the measurement is lost, never the batch (this runs in the pool's bookkeeping).
        }
    }

    public void ObserveConnections(List<Measurement<int>> list)
    {
        var s = _sender.GetStatistics();
        list.Add(new Measurement<int>(s.Idle, _name, Idle));
        list.Add(new Measurement<int>(s.InUse, _name, Used));
        list.Add(new Measurement<int>(s.Opening, _name, Opening));
    }

    public void ObserveMax(List<Measurement<int>> list) => list.Add(new Measurement<int>(_sender.MaxConnections, _name));

    public void ObservePending(List<Measurement<int>> list) => list.Add(new Measurement<int>(_sender.GetStatistics().PendingRequests, _name));

    /// <summary>Adds one (with <paramref name="tag"/> when it has a key); a listener's callback that throws loses the measurement, never the pool's state.</summary>
    private static void Count(Counter<long> counter, KeyValuePair<string, object?> name, KeyValuePair<string, object?> tag)
    {
        try
        {
            if (tag.Key is null)
            {
                counter.Add(1, name);
            }
            else
            {
                counter.Add(1, name, tag);
            }
        }
        catch (Exception)
        {
            // Lost measurement only.
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _metrics.Unregister(this);
        }
    }
}
