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

    /// <summary>The timestamp before which no new connection is opened (0: none).</summary>
    private long _openBackoffUntil;

    internal int MaxConnections => _options.MaxConnections;

    private void Enqueue(params SendRequest[] requests)
    {
        List<Work> start = [];
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            foreach (var request in requests)
            {
                _queue.Enqueue(request);
                _waiting++;
            }

            Dispatch(start);
        }

        foreach (var request in requests)
        {
            request.StartWaiting(this, _time, _options.AcquireTimeout);
        }

        Start(start);
    }

    /// <summary>The caller's token fired: a message still waiting is dropped; one already taken is left to its batch.</summary>
    internal void OnCancelled(SendRequest request)
    {
        if (request.TryClaim(SendRequest.Dropped))
        {
            lock (_lock)
            {
                _waiting--;
            }

            request.TrySetCanceled();
        }
    }

    /// <summary>No connection took the message within <see cref="SmtpSenderOptions.AcquireTimeout"/>: NotSent, TimedOut.</summary>
    internal void OnAcquireTimeout(SendRequest request)
    {
        if (request.TryClaim(SendRequest.Dropped))
        {
            lock (_lock)
            {
                _waiting--;
            }

            request.TrySetResult(SmtpSendResult.NotSent(
                request.Message.Envelope,
                new SmtpException(SmtpErrorCode.TimedOut, $"No connection to {Name} was available within {_options.AcquireTimeout.TotalSeconds:0.###} s (AcquireTimeout); the message was not sent.", new TimeoutException())));
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

        while (_waiting > (_busy + _opening) * _options.MaxBatchSize && _open < _options.MaxConnections && !_disposed
            && (_busy == 0 || _openBackoffUntil == 0 || _time.GetTimestamp() >= _openBackoffUntil))
        {
            _open++;
            _opening++;
            start.Add(new Work(null, null));
        }
    }

    /// <summary>Takes up to a batch of waiting messages, retries first. Under the lock.</summary>
    private List<SendRequest> TakeBatch()
    {
        var batch = new List<SendRequest>(Math.Min(_waiting, _options.MaxBatchSize));
        while (batch.Count < _options.MaxBatchSize && (_retryQueue.TryDequeue(out var request) || _queue.TryDequeue(out request)))
        {
            if (request.TryClaim(SendRequest.Taken))
            {
                _waiting--;
                request.StopAcquireTimer();
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
    private async ValueTask<string?> CheckBeforeLendingAsync(PooledConnection connection)
    {
        if (IsPastLifetime(connection))
        {
            return SmtpSenderDiscardReason.Lifetime;
        }

        if (connection.Session.IsStaleWhileIdle)
        {
            return SmtpSenderDiscardReason.Stale;
        }

        if (_options.NoopAfterIdle == Timeout.InfiniteTimeSpan || _time.GetElapsedTime(connection.IdleSince) < _options.NoopAfterIdle)
        {
            return null;
        }

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

    /// <summary>Sends one batch on a connection and completes (or, for a retry, re-queues) each of its messages.</summary>
    private async Task SendBatchAsync(PooledConnection connection, List<SendRequest> batch)
    {
        var session = connection.Session;
        var messages = new SmtpMessage[batch.Count];
        for (var i = 0; i < messages.Length; i++)
        {
            batch[i].Attempts++;
            messages[i] = batch[i].Message;
        }

        connection.Messages += messages.Length;
        Interlocked.Add(ref _messages, messages.Length);
        Interlocked.Increment(ref _batches);
        _metrics.Batch(messages.Length);
        try
        {
            if (messages.Length == 1)
            {
                var result = await session.SendAsync(messages[0], _disposeCts.Token).ConfigureAwait(false);
                Complete(connection, batch[0], result);
            }
            else
            {
                var results = await session.SendBatchAsync(messages, _disposeCts.Token).ConfigureAwait(false);
                for (var i = 0; i < results.Count; i++)
                {
                    Complete(connection, batch[i], results[i]);
                }
            }
        }
        catch (OperationCanceledException ex) when (_disposeCts.IsCancellationRequested)
        {
            // Disposal cancelled the batch after DisposeTimeout: whatever was written may have been delivered.
            foreach (var request in batch)
            {
                request.TrySetResult(SmtpSendResult.Unknown(request.Message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "The sender was disposed while the message was being sent; it may have been delivered.", ex)));
            }
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
        {
            // Checked before queueing; reaching here is a bug: never leave a caller waiting.
            await session.DisconnectAsync().ConfigureAwait(false);
            foreach (var request in batch)
            {
                request.TrySetException(ex);
            }
        }
    }

    /// <summary>Completes one message, or re-queues it for one more attempt on a fresh connection when that cannot deliver it twice or in part.</summary>
    private void Complete(PooledConnection connection, SendRequest request, SmtpSendResult result)
    {
        if (result.Exception is { } exception && (result.Outcome is SmtpSendOutcome.NotSent or SmtpSendOutcome.Unknown) && !connection.Session.IsConnected)
        {
            connection.BrokenReason ??= result.FinalReply?.IsServiceClosing == true || result.MailReply?.IsServiceClosing == true || result.DataReply?.IsServiceClosing == true
                || result.Recipients.Any(static r => r.Reply?.IsServiceClosing == true)
                ? SmtpSenderDiscardReason.ServiceClosing
                : SmtpSenderDiscardReason.Broken;
        }

        if (result.Outcome == SmtpSendOutcome.NotSent
            && result.Exception is SmtpException { IsTransient: true } retryable
            && !connection.Session.IsConnected
            && _options.RetryOnFreshConnection
            && request.Attempts < 2
            && request.IsReplayable
            && !request.Token.IsCancellationRequested)
        {
            List<Work> start = [];
            lock (_lock)
            {
                if (!_disposed)
                {
                    request.Requeue();
                    _retryQueue.Enqueue(request);
                    _waiting++;
                    Interlocked.Increment(ref _retries);
                    _metrics.Retried();
                    Log.PoolRetry(_log, Name, retryable.ErrorCode);
                    Dispatch(start);
                }
            }

            if (request.IsWaiting)
            {
                Start(start);
                return;
            }
        }

        request.TrySetResult(result);
    }

    /// <summary>Opens a ready connection: connect, TLS, EHLO, AUTH. Never throws (but for disposal): a failure is returned.</summary>
    private async Task<(PooledConnection? Connection, SmtpException? Error)> OpenAsync()
    {
        var session = new AsyncSmtpSession(_sessionOptions);
        var token = _disposeCts.Token;
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
            var connection = new PooledConnection(session, _time.GetTimestamp());
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
}
