using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace MailPipe;

/// <summary>
/// The instruments of the <c>MailPipe</c> meter: one set per <see cref="IMeterFactory"/> (the meter is made by the
/// factory), or one process-wide set when no factory is given. Sessions and pooled senders share it, so that each
/// instrument exists once per meter.
/// </summary>
internal sealed class MailPipeMetrics
{
    private static readonly ConditionalWeakTable<IMeterFactory, MailPipeMetrics> ByFactory = new();

    // Bucket advice for durations in seconds: an SDK's default buckets (0, 5, 10, 25, ... 10000) are made for
    // milliseconds and would put every SMTP exchange shorter than 5 s in one bucket. These are the semantic
    // conventions' (as http.client.request.duration), and for connections, which live for minutes, Kestrel's with 600.
    private static readonly InstrumentAdvice<double> s_shortDurations = new() { HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] };
    private static readonly InstrumentAdvice<int> s_batchSizes = new() { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128] };
    private static readonly InstrumentAdvice<double> s_connectionDurations = new() { HistogramBucketBoundaries = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600] };
    private static MailPipeMetrics? _default;
    private readonly List<IObservedPool> _senders = [];

    // The names of disposed senders that no live sender of this meter carries: their series report 0 from then on. An
    // exporter keeps the last value an observable instrument reported (cumulative temporality), so without it a disposed
    // sender's idle, used, opening and pending counts would stay, for the life of the process, at what they were at the
    // collection before its disposal. One name per distinct sender name (by default host:port), dropped when a sender of
    // that name is made again.
    private readonly HashSet<string> _retired = new(StringComparer.Ordinal);

    private MailPipeMetrics(Meter meter)
    {
        Meter = meter;
        Messages = meter.CreateCounter<long>("mailpipe.smtp.messages", "{message}", "Mail transactions finished, by smtp.outcome (accepted, refused, not_sent, unknown).");
        Recipients = meter.CreateCounter<long>("mailpipe.smtp.recipients", "{recipient}", "Recipients of finished transactions, by smtp.recipient.status (accepted, refused).");
        BytesSent = meter.CreateCounter<long>("mailpipe.smtp.bytes_sent", "By", "Message content bytes sent (as given, before line-end conversion and dot-stuffing), for transactions whose end of data was written.");
        TransactionDuration = meter.CreateHistogram("mailpipe.smtp.transaction.duration", "s", "From MAIL FROM to the transaction's result.", tags: null, advice: s_shortDurations);
        ConnectionDuration = meter.CreateHistogram("mailpipe.smtp.connection.duration", "s", "From the connect to the close of a connection.", tags: null, advice: s_connectionDurations);
        ConnectDuration = meter.CreateHistogram("mailpipe.smtp.connect.duration", "s", "TCP connect; error.type on failure.", tags: null, advice: s_shortDurations);
        TlsDuration = meter.CreateHistogram("mailpipe.smtp.tls.duration", "s", "STARTTLS and the TLS handshake, or the implicit TLS handshake; error.type on failure (the reply code of a refused STARTTLS).", tags: null, advice: s_shortDurations);
        AuthDuration = meter.CreateHistogram("mailpipe.smtp.auth.duration", "s", "AUTH exchange; error.type on failure (the reply code of a refusal).", tags: null, advice: s_shortDurations);
        ConnectFailures = meter.CreateCounter<long>("mailpipe.smtp.connect.failures", "{connection}", "Failed TCP connects, by error.type.");
        TlsFailures = meter.CreateCounter<long>("mailpipe.smtp.tls.failures", "{connection}", "Refused STARTTLS commands and failed TLS handshakes, by error.type.");
        AuthFailures = meter.CreateCounter<long>("mailpipe.smtp.auth.failures", "{connection}", "Failed or refused AUTH exchanges, by error.type.");

        // The pool's instruments (tag mailpipe.sender.name), reported for every live sender on this meter.
        meter.CreateObservableUpDownCounter("mailpipe.sender.connection.count", () => Observe(static (s, list) => s.ObserveConnections(list), RetiredConnections), "{connection}", "Connections of the pool by state.");
        meter.CreateObservableUpDownCounter("mailpipe.sender.connection.max", () => Observe(static (s, list) => s.ObserveMax(list), RetiredOne), "{connection}", "The most connections the pool opens.");
        meter.CreateObservableUpDownCounter("mailpipe.sender.pending_requests", () => Observe(static (s, list) => s.ObservePending(list), RetiredOne), "{message}", "Messages waiting for a connection.");
        PoolOpened = meter.CreateCounter<long>("mailpipe.sender.connection.opened", "{connection}", "Connections opened (greeting, EHLO, TLS and AUTH done).");
        PoolOpenFailures = meter.CreateCounter<long>("mailpipe.sender.connection.open_failures", "{connection}", "Connection attempts that failed.");
        PoolDiscarded = meter.CreateCounter<long>("mailpipe.sender.connection.discarded", "{connection}", "Connections closed by the pool, by reason.");
        PoolRetries = meter.CreateCounter<long>("mailpipe.sender.retries", "{message}", "Messages sent again on a fresh connection after their connection failed before anything could be delivered.");
        PoolBatchSize = meter.CreateHistogram("mailpipe.sender.batch.size", "{message}", "Messages a connection took at once (callers coalesced into one pipelined batch).", tags: null, advice: s_batchSizes);
    }

    /// <summary>The process-wide set (a <see cref="System.Diagnostics.Metrics.Meter"/> made with <c>new</c>), used when no factory is given.</summary>
    public static MailPipeMetrics Default => Volatile.Read(ref _default) ?? CreateDefault();

    public Meter Meter { get; }

    public Counter<long> Messages { get; }

    public Counter<long> Recipients { get; }

    public Counter<long> BytesSent { get; }

    public Histogram<double> TransactionDuration { get; }

    public Histogram<double> ConnectionDuration { get; }

    public Histogram<double> ConnectDuration { get; }

    public Histogram<double> TlsDuration { get; }

    public Histogram<double> AuthDuration { get; }

    public Counter<long> ConnectFailures { get; }

    public Counter<long> TlsFailures { get; }

    public Counter<long> AuthFailures { get; }

    public Counter<long> PoolOpened { get; }

    public Counter<long> PoolOpenFailures { get; }

    public Counter<long> PoolDiscarded { get; }

    public Counter<long> PoolRetries { get; }

    public Histogram<int> PoolBatchSize { get; }

    /// <summary>Whether any per-transaction instrument has a listener.</summary>
    public bool TransactionsObserved => Messages.Enabled || TransactionDuration.Enabled || Recipients.Enabled || BytesSent.Enabled;

    /// <summary>Whether any per-connection instrument has a listener.</summary>
    public bool ConnectionsObserved => ConnectionDuration.Enabled || ConnectDuration.Enabled || TlsDuration.Enabled || AuthDuration.Enabled
        || ConnectFailures.Enabled || TlsFailures.Enabled || AuthFailures.Enabled;

    /// <summary>The set of <paramref name="factory"/> (its meter <c>MailPipe</c>), or <see cref="Default"/>.</summary>
    public static MailPipeMetrics For(IMeterFactory? factory) =>
        factory is null ? Default : ByFactory.GetValue(factory, static f => new MailPipeMetrics(f.Create(MailPipeDiagnostics.MeterName)));

    public void Register(IObservedPool sender)
    {
        lock (_senders)
        {
            _senders.Add(sender);
            _retired.Remove(sender.Name);
        }
    }

    public void Unregister(IObservedPool sender)
    {
        lock (_senders)
        {
            _senders.Remove(sender);
            if (!_senders.Exists(s => s.Name == sender.Name))
            {
                _retired.Add(sender.Name);
            }
        }
    }

    private List<Measurement<int>> Observe(Action<IObservedPool, List<Measurement<int>>> each, Action<string, List<Measurement<int>>> retired)
    {
        var list = new List<Measurement<int>>();
        lock (_senders)
        {
            foreach (var sender in _senders)
            {
                each(sender, list);
            }

            foreach (var name in _retired)
            {
                retired(name, list);
            }
        }

        return Merged(list);
    }

    /// <summary>
    /// The measurements with the same tags added up into one: two live senders of one name (the default name is
    /// host:port, so two senders to one relay share it) report one series each, and an SDK keeps only the last value an
    /// observable instrument reports for a series in one collection, which was one sender's count instead of both.
    /// </summary>
    private static List<Measurement<int>> Merged(List<Measurement<int>> list)
    {
        if (list.Count < 2)
        {
            return list;
        }

        var merged = new List<Measurement<int>>(list.Count);
        var bySeries = new Dictionary<string, int>(list.Count, StringComparer.Ordinal);
        foreach (var measurement in list)
        {
            var series = new System.Text.StringBuilder();
            foreach (var tag in measurement.Tags)
            {
                series.Append(tag.Key).Append('\0').Append(tag.Value).Append('\0');
            }

            if (bySeries.TryGetValue(series.ToString(), out var at))
            {
                merged[at] = new Measurement<int>(merged[at].Value + measurement.Value, merged[at].Tags);
            }
            else
            {
                bySeries.Add(series.ToString(), merged.Count);
                merged.Add(measurement);
            }
        }

        return merged;
    }

    /// <summary>A disposed sender's connections by state: none (see <see cref="_retired"/>).</summary>
    private static void RetiredConnections(string name, List<Measurement<int>> list)
    {
        var tag = new KeyValuePair<string, object?>("mailpipe.sender.name", name);
        foreach (var state in (string[])["idle", "used", "opening"])
        {
            list.Add(new Measurement<int>(0, tag, new KeyValuePair<string, object?>("mailpipe.sender.connection.state", state)));
        }
    }

    /// <summary>A disposed sender's maximum and pending messages: 0.</summary>
    private static void RetiredOne(string name, List<Measurement<int>> list) => list.Add(new Measurement<int>(0, new KeyValuePair<string, object?>("mailpipe.sender.name", name)));

    private static MailPipeMetrics CreateDefault()
    {
        var created = new MailPipeMetrics(new Meter(MailPipeDiagnostics.MeterName));
        var existing = Interlocked.CompareExchange(ref _default, created, null);
        if (existing is not null)
        {
            created.Meter.Dispose();
            return existing;
        }

        return created;
    }
}

/// <summary>A pooled sender's observable state, reported by the <c>mailpipe.sender.*</c> observable instruments.</summary>
internal interface IObservedPool
{
    /// <summary>The sender's <c>mailpipe.sender.name</c>.</summary>
    string Name { get; }

    void ObserveConnections(List<Measurement<int>> list);

    void ObserveMax(List<Measurement<int>> list);

    void ObservePending(List<Measurement<int>> list);
}
