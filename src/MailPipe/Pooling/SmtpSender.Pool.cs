using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>
/// The pool: a queue of waiting messages, idle connections, and one worker per busy or opening connection. Every
/// state change happens under <c>_lock</c>; I/O never does. A worker takes up to <see cref="SmtpSenderOptions.MaxBatchSize"/>
/// waiting messages at a time and sends them as one pipelined batch on its connection.
/// </summary>
public sealed partial class SmtpSender
{
    /// <summary>After a failed connect while other connections work, no new connect is tried for this long.</summary>
    private const long OpenBackoffMilliseconds = 1000;

    /// <summary>The period of the housekeeping tick while messages wait or batches run.</summary>
    private static readonly TimeSpan HousekeepingPeriod = TimeSpan.FromMilliseconds(50);

    private bool _housekeeping;

    /// <summary>The timestamp before which no new connection is opened (0: none).</summary>
    private long _openBackoffUntil;

    private long _nextConnectionId;
    private string? _server;

    internal int MaxConnections => _options.MaxConnections;

    /// <summary>host:port, for the connection log scope.</summary>
    private string Server => _server ??= $"{_options.Host}:{_options.Port}";

    private void Enqueue(params SendRequest[] requests)
    {
        List<Work> start = [];
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var now = _time.GetTimestamp();
            foreach (var request in requests)
            {
                request.EnqueuedAt = now;
                _queue.Enqueue(request);
                _waiting++;
            }

            Dispatch(start);
            if (_waiting > 0)
            {
                ArmHousekeeping();
            }
        }

        foreach (var request in requests)
        {
            request.StartWaiting(this);
        }

        Start(start);
    }

    /// <summary>
    /// The caller's token fired: a message still waiting is dropped; one already taken is left to its batch, unless it
    /// is alone on its connection: then that batch is cancelled (the session closes the connection and never writes
    /// the end of data after the cancellation; the caller learns NotSent or Unknown as for any cancellation).
    /// </summary>
    internal void OnCancelled(SendRequest request)
    {
        if (request.TryClaim(SendRequest.Dropped))
        {
            lock (_lock)
            {
                _waiting--;
            }

            request.TrySetCanceled();
            return;
        }

        CancellationTokenSource? cancel = null;
        lock (_lock)
        {
            foreach (var connection in _all)
            {
                if (connection.InFlight.Count == 1 && connection.InFlight.Peek() == request && connection.BatchCancellation is { } batch)
                {
                    connection.CancelledByCaller = true; // takes no more messages into this batch
                    cancel = batch;
                    break;
                }
            }
        }

        try
        {
            cancel?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The batch ended meanwhile.
        }
    }

    /// <summary>A message that no connection took within <see cref="SmtpSenderOptions.AcquireTimeout"/>: NotSent, TimedOut.</summary>
    private SmtpSendResult AcquireTimedOut(SendRequest request) => SmtpSendResult.NotSent(
        request.Message.Envelope,
        new SmtpException(SmtpErrorCode.TimedOut, $"No connection to {Name} was available within {_options.AcquireTimeout.TotalSeconds:0.###} s (AcquireTimeout); the message was not sent.", new TimeoutException()));

    /// <summary>Starts the housekeeping tick (acquire timeouts, lost connections of waiting batches) if it is not running. Under the lock.</summary>
    private void ArmHousekeeping()
    {
        if (!_housekeeping)
        {
            _housekeeping = true;
            _housekeeper.Change(HousekeepingPeriod, HousekeepingPeriod);
        }
    }

    /// <summary>
    /// The housekeeping tick, while messages wait or batches run: messages past their acquire timeout are completed
    /// NotSent (the queue is in arrival order: only its head is looked at), and a batch waiting on a connection that
    /// was lost is woken (the session reports a lost batch's results only once its sequence ends).
    /// </summary>
    private void Housekeep()
    {
        List<SendRequest> expired = [];
        lock (_lock)
        {
            if (_options.AcquireTimeout != Timeout.InfiniteTimeSpan)
            {
                ExpireHead(_retryQueue, expired);
                ExpireHead(_queue, expired);
            }

            var feeding = false;
            foreach (var connection in _all)
            {
                if (connection.Feeding)
                {
                    feeding = true;
                    if (!connection.Session.IsConnected)
                    {
                        connection.Wake();
                    }
                }
            }

            if (_waiting == 0 && !feeding && _housekeeping)
            {
                _housekeeping = false;
                _housekeeper.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }

        foreach (var request in expired)
        {
            request.TrySetResult(AcquireTimedOut(request));
        }
    }

    private void ExpireHead(Queue<SendRequest> queue, List<SendRequest> expired)
    {
        while (queue.TryPeek(out var head))
        {
            if (head.IsWaiting)
            {
                if (_time.GetElapsedTime(head.EnqueuedAt) < _options.AcquireTimeout || !head.TryClaim(SendRequest.Dropped))
                {
                    return;
                }

                _waiting--;
                expired.Add(head);
            }

            queue.Dequeue();
        }
    }

    /// <summary>
    /// Hands waiting messages to idle connections, and opens a connection when every open one already has a full
    /// batch waiting (and the limit allows). Under the lock; the work is started after it is released.
    /// </summary>
    private void Dispatch(List<Work> start)
    {
        while (_waiting > 0 && _idle.TryPop(out var connection))
        {
            var batch = TakeBatch();
            if (batch.Count == 0)
            {
                _idle.Push(connection);
                break;
            }

            connection.IsIdle = false;
            _busy++;
            start.Add(new Work(connection, batch));
        }

        if (_waiting > 0)
        {
            // Connections in the middle of a batch take waiting messages while they have room.
            foreach (var feeding in _all)
            {
                if (feeding.Feeding)
                {
                    feeding.Wake();
                }
            }
        }

        while (_waiting > (_busy + _opening) * _options.MaxBatchSize && _open < _options.MaxConnections && !_disposed
            && (_busy == 0 || _openBackoffUntil == 0 || _time.GetTimestamp() >= _openBackoffUntil))
        {
            _open++;
            _opening++;
            start.Add(new Work(null, null));
        }
    }

    /// <summary>Takes up to a batch of waiting messages (or <paramref name="max"/>), retries first. Under the lock.</summary>
    private List<SendRequest> TakeBatch(int max = 0)
    {
        max = max > 0 ? max : _options.MaxBatchSize;
        var batch = new List<SendRequest>(Math.Min(_waiting, max));
        while (batch.Count < max && (_retryQueue.TryDequeue(out var request) || _queue.TryDequeue(out request)))
        {
            if (request.TryClaim(SendRequest.Taken))
            {
                _waiting--;
                batch.Add(request);
            }
        }

        return batch;
    }

    private void Start(List<Work> start)
    {
        foreach (var work in start)
        {
            lock (_lock)
            {
                _workers++;
            }

            _ = RunWorkerAsync(work.Connection, work.Batch);
        }
    }

    /// <summary>One connection's life while it is busy: open it if needed, check it if it was idle, send batches until no message waits.</summary>
    private async Task RunWorkerAsync(PooledConnection? connection, List<SendRequest>? batch)
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                if (connection is null)
                {
                    var (opened, error) = await OpenAsync().ConfigureAwait(false);
                    List<Work> start = [];
                    List<SendRequest> failed = [];
                    lock (_lock)
                    {
                        _opening--;
                        if (opened is null)
                        {
                            _open--;
                            failed.AddRange(batch ?? []);

                            // No open connection can serve the waiting messages (others being opened most likely fail
                            // alike): tell them now rather than at their acquire timeout. While open connections work,
                            // the messages wait for them, and no new connect is tried for a second.
                            if (_busy == 0)
                            {
                                failed.AddRange(TakeAll());
                            }
                            else
                            {
                                _openBackoffUntil = _time.GetTimestamp() + (_time.TimestampFrequency * OpenBackoffMilliseconds / 1000);
                            }
                        }
                        else
                        {
                            _all.Add(opened);
                            _busy++;
                            if (batch is null || batch.Count == 0)
                            {
                                batch = TakeBatch();
                            }

                            if (batch.Count == 0)
                            {
                                _busy--;
                                ReturnIdle(opened);
                                return;
                            }
                        }

                        Dispatch(start);
                    }

                    Start(start);
                    if (opened is null)
                    {
                        foreach (var request in failed)
                        {
                            request.TrySetResult(SmtpSendResult.NotSent(request.Message.Envelope, error!));
                        }

                        return;
                    }

                    connection = opened;
                }
                else if (connection.LentFromIdle)
                {
                    connection.LentFromIdle = false;
                    var reason = await CheckBeforeLendingAsync(connection).ConfigureAwait(false);
                    if (reason is not null)
                    {
                        await CloseAsync(connection, reason, quit: reason is SmtpSenderDiscardReason.Lifetime).ConfigureAwait(false);
                        connection = null;
                        lock (_lock)
                        {
                            _busy--;
                            _opening++;
                        }

                        continue;
                    }
                }

                await SendBatchAsync(connection, batch!).ConfigureAwait(false);
                batch = null;

                string? closeReason = !connection.Session.IsConnected ? connection.BrokenReason ?? SmtpSenderDiscardReason.Broken
                    : _options.MaxMessagesPerConnection > 0 && connection.Messages >= _options.MaxMessagesPerConnection ? SmtpSenderDiscardReason.MaxMessages
                    : IsPastLifetime(connection) ? SmtpSenderDiscardReason.Lifetime
                    : Volatile.Read(ref _disposed) ? SmtpSenderDiscardReason.Disposed
                    : null;
                if (closeReason is not null)
                {
                    if (closeReason is SmtpSenderDiscardReason.Broken or SmtpSenderDiscardReason.ServiceClosing && !connection.CancelledByCaller)
                    {
                        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
                        Log.PoolConnectionLost(_log, Name, connection.Id, closeReason, connection.Messages, connection.BrokenException);
                    }

                    await CloseAsync(connection, closeReason, quit: connection.Session.IsConnected).ConfigureAwait(false);
                    connection = null;
                    List<Work> start = [];
                    bool reopen;
                    lock (_lock)
                    {
                        _busy--;

                        // Keep the slot when messages wait (retries among them): open a fresh connection for them.
                        reopen = _waiting > 0 && !_disposed;
                        if (reopen)
                        {
                            _opening++;
                        }
                        else
                        {
                            _open--;
                            Dispatch(start);
                        }
                    }

                    Start(start);
                    if (!reopen)
                    {
                        return;
                    }

                    continue;
                }

                lock (_lock)
                {
                    batch = _disposed ? [] : TakeBatch();
                    if (batch.Count == 0)
                    {
                        _busy--;
                        if (_disposed)
                        {
                            _open--;
                        }
                        else
                        {
                            ReturnIdle(connection);
                            return;
                        }
                    }
                }

                if (batch.Count == 0)
                {
                    await CloseAsync(connection, SmtpSenderDiscardReason.Disposed, quit: true).ConfigureAwait(false);
                    return;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                if (--_workers == 0 && _disposed)
                {
                    _workersDone.TrySetResult();
                }
            }
        }
    }

    private List<SendRequest> TakeAll()
    {
        List<SendRequest> all = [];
        while (_waiting > 0)
        {
            var batch = TakeBatch();
            if (batch.Count == 0)
            {
                break;
            }

            all.AddRange(batch);
        }

        return all;
    }

    /// <summary>Puts a clean connection back. Under the lock.</summary>
    private void ReturnIdle(PooledConnection connection)
    {
        connection.IdleSince = _time.GetTimestamp();
        connection.IsIdle = true;
        connection.LentFromIdle = true;
        _idle.Push(connection);
    }

    private bool IsPastLifetime(PooledConnection connection) =>
        _options.MaxLifetime != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(connection.CreatedAt) >= _options.MaxLifetime;

    /// <summary>Whether an idle connection may be lent: null when it may, else why not.</summary>
    private async ValueTask<string?> CheckBeforeLendingAsync(PooledConnection connection, bool forceNoop = false)
    {
        if (IsPastLifetime(connection))
        {
            return SmtpSenderDiscardReason.Lifetime;
        }

        if (connection.Session.IsStaleWhileIdle)
        {
            return SmtpSenderDiscardReason.Stale;
        }

        if (!forceNoop && (_options.NoopAfterIdle == Timeout.InfiniteTimeSpan || _time.GetElapsedTime(connection.IdleSince) < _options.NoopAfterIdle))
        {
            return null;
        }

        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
        try
        {
            var reply = await connection.Session.NoopAsync(_disposeCts.Token).ConfigureAwait(false);
            return reply.Code == 250 ? null : SmtpSenderDiscardReason.NoopFailed;
        }
        catch (Exception ex) when (ex is SmtpException or OperationCanceledException or InvalidOperationException)
        {
            return SmtpSenderDiscardReason.NoopFailed;
        }
    }

    /// <summary>
    /// Sends a batch on a connection: the messages taken, then every message that comes to wait while the batch runs
    /// and the connection has room (fewer than <see cref="SmtpSenderOptions.MaxBatchSize"/> in flight), all as one
    /// pipelined batch (<see cref="AsyncSmtpSession.SendBatchStreamingAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/>).
    /// Each caller is completed as soon as its own result is known. The batch ends when nothing is in flight and nothing waits.
    /// </summary>
    private async Task SendBatchAsync(PooledConnection connection, List<SendRequest> batch)
    {
        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
        var session = connection.Session;
        Interlocked.Increment(ref _batches);
        var taken = 0;
        using var batchCancellation = CancellationTokenSource.CreateLinkedTokenSource(_disposeCts.Token);
        lock (_lock)
        {
            connection.BatchCancellation = batchCancellation;
        }

        try
        {
            await foreach (var result in session.SendBatchStreamingAsync(FeedAsync(connection, batch), batchCancellation.Token).ConfigureAwait(false))
            {
                SendRequest request;
                lock (_lock)
                {
                    request = connection.InFlight.Dequeue();
                    connection.Wake();
                }

                taken++;
                Complete(connection, request, result);
            }
        }
        catch (OperationCanceledException ex) when (_disposeCts.IsCancellationRequested)
        {
            // Disposal cancelled the batch after DisposeTimeout; the results decided before were yielded above.
            FailInFlight(connection, request => SmtpSendResult.Unknown(request.Message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "The sender was disposed while the message was being sent; it may have been delivered.", ex)));
        }
        catch (OperationCanceledException ex) when (batchCancellation.IsCancellationRequested)
        {
            // The only caller in flight cancelled (OnCancelled): the session yielded the results it could decide; any
            // other is treated as possibly delivered (the caller gets SmtpOutcomeUnknownException).
            List<SendRequest> rest;
            lock (_lock)
            {
                rest = [.. connection.InFlight];
                connection.InFlight.Clear();
                connection.Feeding = false;
            }

            foreach (var request in rest)
            {
                Complete(connection, request, SmtpSendResult.Unknown(request.Message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "The message was cancelled while it was being sent; it may have been delivered.", ex)));
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or SmtpException)
        {
            // Checked before queueing; reaching here is a bug: never leave a caller waiting.
            await session.DisconnectAsync().ConfigureAwait(false);
            FailInFlight(connection, request => throw new InvalidOperationException("The pooled connection failed unexpectedly.", ex));
        }
        finally
        {
            lock (_lock)
            {
                connection.BatchCancellation = null;
            }

            _metrics.Batch(taken);
        }
    }

    /// <summary>The batch's messages: the ones taken, then more from the queue while there is room, waiting only while results are due.</summary>
    private async IAsyncEnumerable<SmtpMessage> FeedAsync(PooledConnection connection, List<SendRequest> first)
    {
        foreach (var request in first)
        {
            lock (_lock)
            {
                connection.InFlight.Enqueue(request);
            }

            yield return Attempt(connection, request);
        }

        while (true)
        {
            SendRequest? next = null;
            Task? wake = null;
            lock (_lock)
            {
                var room = connection.InFlight.Count < _options.MaxBatchSize
                    && !connection.CancelledByCaller
                    && (_options.MaxMessagesPerConnection == 0 || connection.Messages < _options.MaxMessagesPerConnection)
                    && connection.Session.IsConnected
                    && !_disposed;
                if (room && _waiting > 0)
                {
                    var one = TakeBatch(1);
                    if (one.Count == 1)
                    {
                        next = one[0];
                        connection.InFlight.Enqueue(next);
                    }
                }

                if (next is null)
                {
                    if (connection.InFlight.Count == 0 || !connection.Session.IsConnected || _disposed)
                    {
                        connection.Feeding = false;
                        yield break;
                    }

                    // Results are due: wait for one of them, or for a new message (the session reads replies meanwhile).
                    connection.Feeding = true;
                    wake = connection.ArmWake();
                    ArmHousekeeping();
                }
            }

            if (next is not null)
            {
                yield return Attempt(connection, next);
            }
            else
            {
                // A lost connection is noticed by the housekeeping tick, which wakes this wait.
                await wake!.ConfigureAwait(false);
            }
        }
    }

    private SmtpMessage Attempt(PooledConnection connection, SendRequest request)
    {
        request.Attempts++;
        connection.Messages++;
        Interlocked.Increment(ref _messages);
        return request.Token.CanBeCanceled ? request.Message.WithCancellation(request.Token) : request.Message;
    }

    private void FailInFlight(PooledConnection connection, Func<SendRequest, SmtpSendResult> result)
    {
        List<SendRequest> rest;
        lock (_lock)
        {
            rest = [.. connection.InFlight];
            connection.InFlight.Clear();
            connection.Feeding = false;
        }

        foreach (var request in rest)
        {
            try
            {
                request.TrySetResult(result(request));
            }
            catch (InvalidOperationException ex)
            {
                request.TrySetException(ex);
            }
        }
    }

    /// <summary>Completes one message, or re-queues it for one more attempt on a fresh connection when that cannot deliver it twice or in part.</summary>
    private void Complete(PooledConnection connection, SendRequest request, SmtpSendResult result)
    {
        if (result.Outcome is SmtpSendOutcome.NotSent or SmtpSendOutcome.Unknown && result.Exception is SmtpException failure && !connection.Session.IsConnected)
        {
            connection.BrokenException ??= failure;
            connection.BrokenReason ??= failure.ErrorCode == SmtpErrorCode.ServiceNotAvailable
                || result.FinalReply?.IsServiceClosing == true || result.MailReply?.IsServiceClosing == true || result.DataReply?.IsServiceClosing == true
                || result.Recipients.Any(static r => r.Reply?.IsServiceClosing == true)
                ? SmtpSenderDiscardReason.ServiceClosing
                : SmtpSenderDiscardReason.Broken;
        }

        // The caller's cancellation: before its first byte the message was skipped (NotSent); after its end of data
        // the outcome is unknown. A decided outcome (accepted, refused) is the truth and is returned.
        if (request.Token.IsCancellationRequested)
        {
            if (result.Outcome == SmtpSendOutcome.NotSent)
            {
                request.TrySetCanceled();
                return;
            }

            if (result.Outcome == SmtpSendOutcome.Unknown)
            {
                request.TrySetException(new SmtpOutcomeUnknownException(result, result.Exception, request.Token));
                return;
            }
        }

        // NotSent because the connection failed, or refused with 421 (the service closing the connection, not a verdict
        // on the message): nothing was delivered, so another connection may try once.
        var closing = IsServiceClosingRefusal(result);
        if ((closing || (result.Outcome == SmtpSendOutcome.NotSent && result.Exception is SmtpException { IsTransient: true }))
            && !connection.Session.IsConnected
            && _options.RetryOnFreshConnection
            && request.Attempts < 2
            && request.IsReplayable)
        {
            List<Work> start = [];
            var requeued = false;
            lock (_lock)
            {
                if (!_disposed)
                {
                    request.Requeue();
                    request.EnqueuedAt = _time.GetTimestamp();
                    _retryQueue.Enqueue(request);
                    _waiting++;
                    requeued = true;
                    Interlocked.Increment(ref _retries);
                    _metrics.Retried();
                    Log.PoolRetry(_log, Name, (result.Exception as SmtpException)?.ErrorCode ?? SmtpErrorCode.ServiceNotAvailable);
                    Dispatch(start);
                }
            }

            if (requeued)
            {
                Start(start);
                return;
            }
        }

        request.TrySetResult(result);
    }

    /// <summary>Whether a refusal came from a 421 (RFC 5321 §3.8: the server closes the channel) rather than from the message.</summary>
    private static bool IsServiceClosingRefusal(SmtpSendResult result) =>
        result.Outcome == SmtpSendOutcome.Refused
        && (result.MailReply?.Code == 421
            || result.DataReply?.Code == 421
            || result.FinalReply?.Code == 421
            || (result.Recipients.Count > 0 && result.Recipients.All(static r => r.Reply is null || r.Reply.Code == 421) && result.Recipients.Any(static r => r.Reply?.Code == 421)));

    /// <summary>Opens a ready connection: connect, TLS, EHLO, AUTH. Never throws (but for disposal): a failure is returned.</summary>
    private async Task<(PooledConnection? Connection, SmtpException? Error)> OpenAsync()
    {
        var id = Interlocked.Increment(ref _nextConnectionId);
        using var scope = Log.BeginConnectionScope(_log, id, Server, Name);
        var session = new AsyncSmtpSession(_sessionOptions);
        var token = _openCts.Token;
        try
        {
            SmtpReply reply;
            if (_options.ConnectStream is { } connect)
            {
                var stream = await connect(token).ConfigureAwait(false);
                reply = (await session.ConnectAsync(stream, waitForGreeting: true, token).ConfigureAwait(false))!;
                if (reply.IsPositiveCompletion)
                {
                    reply = await session.HelloAsync(_options.EhloName ?? "[127.0.0.1]", token).ConfigureAwait(false);
                }
            }
            else
            {
                var ehlo = _ehloName ??= await DefaultEhloNameAsync(_options.Host, _options.Port, token).ConfigureAwait(false);
                reply = await session.ConnectAsync(_options.Host, _options.Port, _options.TlsMode, ehlo, token).ConfigureAwait(false);
            }

            if (!reply.IsPositiveCompletion)
            {
                throw new SmtpException(SmtpErrorCode.ConnectionRefused, $"{Name} refused the session: {reply}") { IsTransient = !reply.IsPermanentNegative };
            }

            await AuthenticateAsync(session, token).ConfigureAwait(false);
            var connection = new PooledConnection(session, _time.GetTimestamp()) { Id = id };
            Interlocked.Increment(ref _opened);
            _metrics.Opened();
            Log.PoolConnectionOpened(_log, Name);
            return (connection, null);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !token.IsCancellationRequested)
        {
            await session.DisposeAsync().ConfigureAwait(false);
            var error = ex as SmtpException ?? new SmtpException(
                ex is OperationCanceledException ? SmtpErrorCode.TimedOut : SmtpErrorCode.AuthenticationError,
                $"Opening a connection to {Name} failed: {ex.Message}",
                ex);
            Interlocked.Increment(ref _openFailures);
            _metrics.OpenFailed();
            Log.PoolConnectionOpenFailed(_log, Name, error.ErrorCode, error);
            return (null, error);
        }
        catch (OperationCanceledException ex)
        {
            await session.DisposeAsync().ConfigureAwait(false);
            Interlocked.Increment(ref _openFailures);
            return (null, new SmtpException(SmtpErrorCode.ConnectionClosed, "The sender was disposed while a connection was being opened.", ex));
        }
    }

    private async Task AuthenticateAsync(AsyncSmtpSession session, CancellationToken token)
    {
        SmtpReply? reply = null;
        if (_options.AccessTokenProvider is { } tokenProvider)
        {
            reply = await session.AuthenticateAsync(_options.OAuthUserName!, tokenProvider, _options.Authentication, token).ConfigureAwait(false);
        }
        else
        {
            var credentials = _options.CredentialsProvider is { } provider ? await provider(token).ConfigureAwait(false) : _options.Credentials;
            if (credentials is not null)
            {
                reply = await session.AuthenticateAsync(credentials, _options.Authentication, token).ConfigureAwait(false);
            }
        }

        if (reply is { IsPositiveCompletion: false })
        {
            throw new SmtpException(SmtpErrorCode.AuthenticationError, $"{Name} refused AUTH: {reply}") { IsTransient = reply.IsTransientNegative };
        }
    }

    /// <summary>
    /// The EHLO name when none is set (RFC 5321 §4.1.1.1, §4.1.3): the machine's name when fully qualified, else the
    /// address literal of the local address that reaches the server.
    /// </summary>
    internal static async ValueTask<string> DefaultEhloNameAsync(string host, int port, CancellationToken cancellationToken)
    {
        var machine = Dns.GetHostName();
        if (machine.Contains('.', StringComparison.Ordinal) && !machine.StartsWith("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return machine;
        }

        try
        {
            var addresses = IPAddress.TryParse(host.Trim('[', ']'), out var literal) ? [literal] : await Dns.GetHostAddressesAsync(host, cancellationToken).ConfigureAwait(false);
            if (addresses.Length > 0)
            {
                // A UDP "connect" sends nothing; it only picks the route and so the local address.
                using var probe = new Socket(addresses[0].AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                probe.Connect(addresses[0], port);
                if (probe.LocalEndPoint is IPEndPoint local)
                {
                    return local.AddressFamily == AddressFamily.InterNetworkV6 ? $"[IPv6:{local.Address}]" : $"[{local.Address}]";
                }
            }
        }
        catch (SocketException)
        {
            // Fall through: the connect itself will report what is wrong with the host.
        }

        return "[127.0.0.1]";
    }

    /// <summary>Closes a connection (QUIT when asked and possible) and counts it. Never throws.</summary>
    private async Task CloseAsync(PooledConnection connection, string reason, bool quit)
    {
        lock (_lock)
        {
            _all.Remove(connection);
        }

        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
        Interlocked.Add(ref _roundTripsOfClosed, connection.Session.RoundTrips);
        Interlocked.Increment(ref _discarded);
        _metrics.Discarded(reason);
        Log.PoolConnectionDiscarded(_log, Name, reason);
        if (quit)
        {
            await connection.Session.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            connection.Session.Dispose();
        }
    }

    /// <summary>The periodic sweep: closes idle connections past their idle timeout or lifetime, or gone stale.</summary>
    private void Sweep()
    {
        List<(PooledConnection Connection, string Reason)> close = [];
        lock (_lock)
        {
            if (_disposed || _idle.Count == 0)
            {
                return;
            }

            var keep = new List<PooledConnection>(_idle.Count);
            while (_idle.TryPop(out var connection))
            {
                var reason = _options.IdleTimeout != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(connection.IdleSince) >= _options.IdleTimeout ? SmtpSenderDiscardReason.IdleTimeout
                    : IsPastLifetime(connection) ? SmtpSenderDiscardReason.Lifetime
                    : connection.Session.IsStaleWhileIdle ? SmtpSenderDiscardReason.Stale
                    : null;
                if (reason is null)
                {
                    keep.Add(connection);
                }
                else
                {
                    // Its slot is given back only once it is closed (a server counting connections must not see one too many).
                    close.Add((connection, reason));
                }
            }

            for (var i = keep.Count - 1; i >= 0; i--)
            {
                _idle.Push(keep[i]);
            }
        }

        foreach (var (connection, reason) in close)
        {
            _ = CloseAndReleaseAsync(connection, reason);
        }
    }

    private async Task CloseAndReleaseAsync(PooledConnection connection, string reason)
    {
        await CloseAsync(connection, reason, quit: reason is not SmtpSenderDiscardReason.Stale).ConfigureAwait(false);
        List<Work> start = [];
        lock (_lock)
        {
            _open--;
            Dispatch(start);
        }

        Start(start);
    }

    private readonly record struct Work(PooledConnection? Connection, List<SendRequest>? Batch);
}

/// <summary>One pooled connection and what the pool knows of it.</summary>
internal sealed class PooledConnection(AsyncSmtpSession session, long createdAt)
{
    public AsyncSmtpSession Session { get; } = session;

    /// <summary>The number of the connection within its sender (from 1), in the log scope.</summary>
    public long Id { get; init; }

    /// <summary>The failure that broke it, when a result told.</summary>
    public Exception? BrokenException { get; set; }

    /// <summary>Cancels the running batch (the only caller in flight cancelled). Under the pool's lock.</summary>
    public CancellationTokenSource? BatchCancellation { get; set; }

    /// <summary>Whether its batch was cancelled by its only caller: it takes no more messages, and is closed without a lost-connection warning.</summary>
    public bool CancelledByCaller { get; set; }

    /// <summary>When it was opened (a <see cref="TimeProvider"/> timestamp).</summary>
    public long CreatedAt { get; } = createdAt;

    /// <summary>When it last went idle.</summary>
    public long IdleSince { get; set; }

    /// <summary>Whether it sits in the idle stack.</summary>
    public bool IsIdle { get; set; }

    /// <summary>Whether it comes from the idle stack and must be checked before its batch.</summary>
    public bool LentFromIdle { get; set; }

    /// <summary>Messages handed to it.</summary>
    public int Messages { get; set; }

    /// <summary>Why it broke, when a result told (421 or not).</summary>
    public string? BrokenReason { get; set; }

    /// <summary>The messages of the running batch whose results are not known yet, in batch order. Under the pool's lock.</summary>
    public Queue<SendRequest> InFlight { get; } = new();

    /// <summary>Whether the running batch waits for a result or a new message (it can take more). Under the pool's lock.</summary>
    public bool Feeding { get; set; }

    private TaskCompletionSource? _wake;

    /// <summary>A task that completes at the next <see cref="Wake"/>. Under the pool's lock.</summary>
    public Task ArmWake()
    {
        _wake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _wake.Task;
    }

    /// <summary>Wakes the batch's feeder, if it waits. Under the pool's lock.</summary>
    public void Wake()
    {
        _wake?.TrySetResult();
        _wake = null;
    }
}
