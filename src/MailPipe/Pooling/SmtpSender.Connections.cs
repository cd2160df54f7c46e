using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The pool's connections: opening (connect, TLS, EHLO, AUTH), the check before lending an idle one, closing and the sweep of idle ones.</summary>
public sealed partial class SmtpSender
{
    /// <summary>Whether an idle connection may be lent: null when it may, else why not; with <paramref name="noop"/>, a NOOP must be answered 250 too.</summary>
    private async ValueTask<string?> CheckBeforeLendingAsync(PooledConnection connection, bool noop)
    {
        if (IsPastLifetime(connection))
        {
            return SmtpSenderDiscardReason.Lifetime;
        }

        if (IsNearNonMailLimit(connection))
        {
            return SmtpSenderDiscardReason.NonMailLimit;
        }

        if (connection.Session.IsStaleWhileIdle)
        {
            return SmtpSenderDiscardReason.Stale;
        }

        if (!noop)
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

    /// <summary>Whether an idle connection has been idle for <see cref="SmtpSenderOptions.NoopAfterIdle"/> or longer: checked with NOOP before it is lent.</summary>
    private bool NeedsNoop(PooledConnection connection) =>
        _options.NoopAfterIdle != Timeout.InfiniteTimeSpan && _time.GetElapsedTime(connection.IdleSince) >= _options.NoopAfterIdle;

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
                // A session refused by its greeting or EHLO reply failed to open: its span's error.type is that reply's code.
                SessionTelemetry.ConnectionEnded(session, reply.Code.ToString(System.Globalization.CultureInfo.InvariantCulture));
                throw new SmtpException(SmtpErrorCode.ConnectionRefused, $"{Name} refused the session: {reply}") { IsTransient = !reply.IsPermanentNegative, Reply = reply };
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
            var error = ex as SmtpException ?? new SmtpException(
                ex is OperationCanceledException ? SmtpErrorCode.TimedOut : SmtpErrorCode.AuthenticationError,
                $"Opening a connection to {Name} failed: {ex.Message}",
                ex);

            // The connection failed to open (refused greeting or EHLO, AUTH, ...) even when it is still up: its span says why before QUIT.
            SessionTelemetry.ConnectionEnded(session, MailPipeTelemetry.ErrorType(error));
            await session.DisposeAsync().ConfigureAwait(false);
            Interlocked.Increment(ref _openFailures);
            _metrics.OpenFailed();
            Log.PoolConnectionOpenFailed(_log, Name, error.ErrorCode, error);
            return (null, error);
        }
        catch (OperationCanceledException ex)
        {
            // Cancelled by the disposal: not a failure of the server (neither the statistics nor the metric count it).
            await session.DisposeAsync().ConfigureAwait(false);
            return (null, new SmtpException(SmtpErrorCode.ConnectionClosed, "The sender was disposed while a connection was being opened.", ex));
        }
    }

    private async Task AuthenticateAsync(AsyncSmtpSession session, CancellationToken token)
    {
        SmtpReply? reply = null;
        if (_options.AccessTokenProvider is { } tokenProvider)
        {
            reply = await session.AuthenticateAsync(_options.OAuthUserName!, ct => CallProviderAsync(tokenProvider, "access-token provider", ct), _options.Authentication, token).ConfigureAwait(false);
        }
        else
        {
            var credentials = _options.CredentialsProvider is { } provider ? await CallProviderAsync(provider, "credentials provider", token).ConfigureAwait(false) : _options.Credentials;
            if (credentials is not null)
            {
                reply = await session.AuthenticateAsync(credentials, _options.Authentication, token).ConfigureAwait(false);
            }
        }

        // Only 235 authenticates (RFC 4954 §4): another 2yz (smtp-sink's 250) is no login, and the connection is not lent.
        if (reply is { Code: not 235 })
        {
            throw new SmtpException(SmtpErrorCode.AuthenticationError, reply.IsPositiveCompletion ? $"{Name} answered AUTH with {reply}, not 235 (RFC 4954 §4): not authenticated" : $"{Name} refused AUTH {session.LastAttemptedMechanism}: {reply}") { IsTransient = reply.IsTransientNegative, Reply = reply };
        }
    }

    /// <summary>
    /// Calls a credentials or access-token provider (the application's code) with <see cref="SmtpTimeouts.Reply"/> as
    /// its deadline, as a server's reply has: one that never returns would otherwise hold its connection's slot, opening
    /// forever, and every later message would time out waiting for a connection. A failure of the provider's own I/O
    /// (<see cref="IsTransientProviderFailure"/>), and a provider past that deadline (its I/O did not complete in time,
    /// as when its own HttpClient.Timeout elapses), become a transient <see cref="SmtpErrorCode.AuthenticationError"/>
    /// around the provider's failure (a <see cref="TimeoutException"/> for the deadline): no server's doing, which
    /// MailPipe.Resilience's circuit breaker does not count; any other exception passes as it is (the open makes it a
    /// permanent one; an <see cref="SmtpException"/> is kept).
    /// </summary>
    private async ValueTask<T> CallProviderAsync<T>(Func<CancellationToken, ValueTask<T>> provider, string what, CancellationToken token)
    {
        using var deadline = new CancellationTokenSource(_options.Timeouts.Reply, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(token, deadline.Token);
        try
        {
            // WaitAsync: a provider that ignores its token is not waited for past the deadline either.
            return await provider(linked.Token).AsTask().WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !token.IsCancellationRequested)
        {
            var message = $"The {what} of {Name} did not return within {_options.Timeouts.Reply.TotalSeconds:0.###} s (Timeouts.Reply); no AUTH was sent.";
            throw new SmtpException(SmtpErrorCode.AuthenticationError, message, new TimeoutException(message, ex)) { IsTransient = true };
        }
        catch (Exception ex) when (IsTransientProviderFailure(ex) && !(ex is OperationCanceledException && token.IsCancellationRequested))
        {
            throw new SmtpException(SmtpErrorCode.AuthenticationError, $"The {what} of {Name} failed ({ex.GetType().Name}): {ex.Message}; no AUTH was sent.", ex) { IsTransient = true };
        }
    }

    /// <summary>
    /// Whether a provider's exception is a failure of its own I/O that a later attempt may not meet (a secret store or
    /// token endpoint unreachable or overloaded), as Microsoft.Extensions.Http.Resilience classifies HTTP: an
    /// <see cref="System.Net.Http.HttpRequestException"/> without a status code (the connection failed; not a TLS
    /// failure nor the rejected credentials of the client's own HTTP authentication) or with 408, 429 or 5xx; a
    /// <see cref="TimeoutException"/> (also as the cause of the <see cref="TaskCanceledException"/> by which
    /// <c>HttpClient.Timeout</c> ends a request), any other <see cref="OperationCanceledException"/> of its own (not the
    /// caller's nor the deadline's: its own timeout), <see cref="IOException"/> (not a missing file or directory) or
    /// <see cref="SocketException"/>. Not a 4xx (wrong credentials or permissions), nor anything else (a bug, a missing
    /// secret): those stay permanent, since retrying cannot mend them.
    /// </summary>
    internal static bool IsTransientProviderFailure(Exception exception) => exception switch
    {
        System.Net.Http.HttpRequestException { StatusCode: { } status } => (int)status >= 500 || status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests,
        System.Net.Http.HttpRequestException http => http.HttpRequestError is not (System.Net.Http.HttpRequestError.SecureConnectionError
            or System.Net.Http.HttpRequestError.UserAuthenticationError),
        // HttpClient.Timeout elapsed (a TaskCanceledException around a TimeoutException), or another timeout of its own
        // (the open's cancellation and the deadline are told apart before).
        OperationCanceledException => true,
        FileNotFoundException or DirectoryNotFoundException or PathTooLongException => false,
        TimeoutException or IOException or SocketException => true,
        _ => false,
    };

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

    /// <summary>
    /// The next batch of a connection that is kept (after a batch, or a NOOP before lending): null when none waits (it
    /// went back idle), empty when the sender is disposed (its slot is released: <see cref="CloseIfReleasedAsync"/>).
    /// </summary>
    private List<SendRequest>? TakeNextOrRelease(PooledConnection connection)
    {
        lock (_lock)
        {
            List<SendRequest> batch = _disposed ? [] : TakeBatch(BatchLimit(connection));
            if (batch.Count > 0)
            {
                return batch;
            }

            _busy--;
            if (_disposed)
            {
                _open--;
                return batch;
            }

            ReturnIdle(connection);
            return null;
        }
    }

    /// <summary>Closes a connection that <see cref="TakeNextOrRelease"/> released as the sender is disposed (not one it put back idle).</summary>
    private Task CloseIfReleasedAsync(PooledConnection connection, List<SendRequest>? batch) =>
        batch is null ? Task.CompletedTask : CloseAsync(connection, SmtpSenderDiscardReason.Disposed, quit: true);

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
                    // Its slot is given back only once it is closed (a server counting connections must not see one too many);
                    // counted as work, so that a disposal meanwhile completes only once it is closed.
                    close.Add((connection, reason));
                    _workers++;
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
        try
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
        finally
        {
            WorkerDone();
        }
    }
}
