using MailPipe.Sending;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MailPipe;

/// <summary>
/// The shared, thread-safe way to send mail: one object per relay for the whole application (a singleton, as an
/// <c>HttpClient</c> or an <c>NpgsqlDataSource</c>), holding a pool of ready connections (connected, TLS, EHLO and AUTH
/// done). Messages of concurrent callers that wait for a connection are sent together as one pipelined batch
/// (RFC 2920), so that they share round trips; each caller still gets its own result as soon as it is known.
/// </summary>
/// <remarks>
/// <para><b>Never throws for the server's or the network's sake</b>: see <see cref="ISmtpSender"/>.</para>
/// <para><b>Pool hygiene.</b> A connection goes back to the pool only when clean; one that broke, got 421 or has an
/// unsolicited reply waiting is closed and never lent again. Before an idle connection is lent it is checked without
/// a round trip (end of stream, unsolicited reply) and, after <see cref="SmtpSenderOptions.NoopAfterIdle"/>, with
/// NOOP: a connection that went stale while idle (a server restart, an idle timeout) is replaced without costing the
/// message an attempt, and a connection the server left while still in its batch takes no more messages. A message
/// that was <see cref="SmtpSendOutcome.NotSent"/> because its connection failed is sent once more on a fresh connection
/// when that cannot send a fragment, up to four attempts in all when the connections it was left behind on were
/// sessions the server ended at a limit (<see cref="SmtpSenderOptions.RetryOnFreshConnection"/>).</para>
/// <para><b>Connections.</b> A new connection is opened only when every open one already has
/// <see cref="SmtpSenderOptions.MaxBatchSize"/> messages waiting, and never more than
/// <see cref="SmtpSenderOptions.MaxConnections"/>.</para>
/// <para><b>Disposal.</b> <c>await using</c> (<see cref="DisposeAsync"/>: waits until every connection is closed) or
/// <c>using</c> (<see cref="Dispose"/>, what a dependency injection container disposed synchronously calls: the same
/// disposal, started without waiting for the connections to close).</para>
/// </remarks>
public sealed partial class SmtpSender : ISmtpSender, IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> of the pool's instruments.</summary>
    public const string MeterName = "MailPipe";

    private readonly SmtpSenderOptions _options;
    private readonly SmtpSessionOptions _sessionOptions;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly SmtpSenderMetrics _metrics;
    private readonly Lock _lock = new();
    private readonly RequestQueue _retryQueue = new();
    private readonly RequestQueue _queue = new();
    private readonly Stack<PooledConnection> _idle = new();
    private readonly HashSet<PooledConnection> _all = [];
    private readonly CancellationTokenSource _disposeCts = new();

    /// <summary>Cancels connections being opened as soon as disposal starts (no transaction is at stake there).</summary>
    private readonly CancellationTokenSource _openCts = new();
    private readonly TaskCompletionSource _workersDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when the one disposal is over: every DisposeAsync call awaits it.</summary>
    private readonly TaskCompletionSource _disposalDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ITimer _sweeper;
    private readonly ITimer _housekeeper;
    private string? _ehloName;
    private int _waiting;
    private int _busy;
    private int _opening;
    private int _open;
    private int _workers;
    private bool _disposed;
    private long _opened;
    private long _openFailures;
    private long _discarded;
    private long _messages;
    private long _batches;
    private long _roundTripsOfClosed;
    private long _retries;

    /// <summary>Creates a sender; no connection is opened until the first message.</summary>
    /// <param name="options">Where to connect, who to be, the pool and the timeouts; copied.</param>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null, or a setting object it holds (<see cref="SmtpSenderOptions.Timeouts"/>, <see cref="SmtpSenderOptions.Tls"/>, <see cref="SmtpSenderOptions.TimeProvider"/>) is.</exception>
    /// <exception cref="ArgumentException"><see cref="SmtpSenderOptions.Host"/> is empty or not a host name or IP address alone (a space, a control character, a port, a scheme), or a setting is inconsistent.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range.</exception>
    public SmtpSender(SmtpSenderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Clone();
        _options.Validate();
        _sessionOptions = _options.CreateSessionOptions();
        _time = _options.TimeProvider;
        _log = (_options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger("MailPipe.Pool");
        _ehloName = _options.EhloName;
        Name = _options.Name ?? Transport.SmtpEndpointText.Format(_options.Host, _options.Port);
        _metrics = new SmtpSenderMetrics(this, _options.MeterFactory);
        var period = SweepPeriod(_options.IdleTimeout);

        // Timers capture the execution context: not the one of whoever made the sender (the request that first resolved
        // it), whose Activity.Current and logger scopes the sweep's QUITs and the housekeeping's opens would carry.
        AsyncFlowControl? detached = ExecutionContext.IsFlowSuppressed() ? null : ExecutionContext.SuppressFlow();
        try
        {
            _sweeper = _time.CreateTimer(static s => ((SmtpSender)s!).Sweep(), this, period, period);
            _housekeeper = _time.CreateTimer(static s => ((SmtpSender)s!).Housekeep(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        }
        finally
        {
            detached?.Undo();
        }
    }

    /// <summary>The name in logs and metrics (<see cref="SmtpSenderOptions.Name"/>, or <c>host:port</c>).</summary>
    public string Name { get; }

    /// <summary>Whether its connections log addresses whole (<see cref="SmtpSessionOptions.LogAddresses"/>): MailPipe.Resilience's log entries follow it.</summary>
    internal bool LogAddresses => _sessionOptions.LogAddresses;

    /// <inheritdoc/>
    public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        AsyncSmtpSession.ValidateEnvelope(message.Envelope);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<SmtpSendResult>(cancellationToken);
        }

        var request = new SendRequest(message, cancellationToken);
        Enqueue(request);
        return request.Task;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The messages join the queue of the pool as if sent by as many callers, so they share batches and connections with
    /// everyone else. When <paramref name="cancellationToken"/> is cancelled, the messages not yet taken by a
    /// connection are dropped and, once the others are done, <see cref="SmtpBatchCanceledException"/> is thrown with one
    /// result per message: the decided ones as they are, <see cref="SmtpSendOutcome.Unknown"/> for those whose end of
    /// data was written, <see cref="SmtpSendOutcome.NotSent"/> for the dropped ones (so that a retry leaves out what was
    /// accepted). When the sender is disposed while the batch is under way, the messages it dropped are
    /// <see cref="SmtpSendOutcome.NotSent"/> with the <see cref="ObjectDisposedException"/> as their exception, and the
    /// results are returned (the exception alone would hide the messages already accepted).
    /// </remarks>
    /// <exception cref="SmtpBatchCanceledException"><paramref name="cancellationToken"/> was cancelled; <c>Results</c> has one result per message.</exception>
    public async Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var list = messages as IReadOnlyList<SmtpMessage> ?? [.. messages];
        for (var i = 0; i < list.Count; i++)
        {
            AsyncSmtpSession.ValidateEnvelope((list[i] ?? throw new ArgumentNullException(nameof(messages), TransactionSender.NullMessageText(i))).Envelope);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed), this);
        if (cancellationToken.IsCancellationRequested)
        {
            // As for a cancellation under way: one result per message, none sent (every message of the call is known here; a
            // session's batch has results only for the messages it took from its sequence, none with a token cancelled before).
            var early = new OperationCanceledException(cancellationToken);
            throw new SmtpBatchCanceledException([.. list.Select(m => new SmtpSendResult(m.Envelope, SmtpSendOutcome.NotSent, null, [.. m.Envelope.Recipients.Select(static r => new SmtpRecipientResult(r, null))], null, null, early))], early, cancellationToken);
        }

        var requests = new SendRequest[list.Count];
        for (var i = 0; i < requests.Length; i++)
        {
            requests[i] = new SendRequest(list[i], cancellationToken);
        }

        Enqueue(requests);
        var results = new SmtpSendResult[requests.Length];
        OperationCanceledException? canceled = null;
        for (var i = 0; i < requests.Length; i++)
        {
            try
            {
                results[i] = await requests[i].Task.ConfigureAwait(false);
            }
            catch (SmtpOutcomeUnknownException ex) when (ex is { Result: var unknown })
            {
                (canceled, results[i]) = (canceled ?? ex, unknown);
            }
            catch (Exception ex) when (ex is OperationCanceledException or ObjectDisposedException)
            {
                // Dropped before its first byte (cancelled, or the sender disposed meanwhile), or cancelled in its
                // content: nothing of it was delivered.
                canceled ??= ex as OperationCanceledException;
                results[i] = new SmtpSendResult(list[i].Envelope, SmtpSendOutcome.NotSent, null, [.. list[i].Envelope.Recipients.Select(static r => new SmtpRecipientResult(r, null))], null, null, ex);
            }
        }

        if (canceled is not null)
        {
            // The first exception alone would lose the other messages' outcomes (an accepted or unknown one sent again).
            throw new SmtpBatchCanceledException(results, canceled, cancellationToken);
        }

        return results;
    }

    /// <summary>A snapshot of the pool: connections idle, in use and opening, messages waiting, and counters since creation.</summary>
    /// <returns>The numbers.</returns>
    public SmtpSenderStatistics GetStatistics()
    {
        lock (_lock)
        {
            var roundTrips = Interlocked.Read(ref _roundTripsOfClosed);
            foreach (var connection in _all)
            {
                roundTrips += connection.Session.RoundTrips;
            }

            return new SmtpSenderStatistics
            {
                Idle = _idle.Count,
                InUse = _busy,
                Opening = _opening,
                PendingRequests = _waiting,
                Opened = Interlocked.Read(ref _opened),
                OpenFailures = Interlocked.Read(ref _openFailures),
                Discarded = Interlocked.Read(ref _discarded),
                Messages = Interlocked.Read(ref _messages),
                Batches = Interlocked.Read(ref _batches),
                RoundTrips = roundTrips,
                Retries = Interlocked.Read(ref _retries),
            };
        }
    }

    /// <summary>The entries of the two queues, dropped ones not yet taken out included (tests: a cancelled message must not stay).</summary>
    internal int QueuedEntries
    {
        get
        {
            lock (_lock)
            {
                return _queue.Count + _retryQueue.Count;
            }
        }
    }

    private static TimeSpan SweepPeriod(TimeSpan idleTimeout) =>
        idleTimeout == Timeout.InfiniteTimeSpan ? TimeSpan.FromSeconds(5) : TimeSpan.FromTicks(Math.Clamp(idleTimeout.Ticks / 4, TimeSpan.TicksPerMillisecond * 100, TimeSpan.TicksPerSecond * 5));
}
