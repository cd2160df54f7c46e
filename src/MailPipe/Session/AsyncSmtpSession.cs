using MailPipe.Channel;
using MailPipe.Transport;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace MailPipe;

/// <summary>
/// One SMTP connection, driven command by command (RFC 5321). Every command that has a reply returns
/// <see cref="Task{SmtpReply}"/>; every call takes a <see cref="CancellationToken"/>.
/// </summary>
/// <remarks>
/// <para><b>Negative replies are data.</b> A 4yz or 5yz reply is returned, never thrown; check
/// <see cref="SmtpReply.Code"/>. Only transport failures, protocol violations and timeouts throw
/// (<see cref="SmtpException"/>), and the caller's cancellation throws <see cref="OperationCanceledException"/>.</para>
/// <para><b>Failure closes the connection.</b> After any such exception the connection is closed and
/// <see cref="State"/> is <see cref="SmtpSessionState.Disconnected"/>; the same object may <c>ConnectAsync</c> again
/// (a fresh connection; nothing of the broken one is reused). A cancelled or failed message-data operation never sends
/// the end-of-data line, so a truncated message is never delivered. A token already cancelled when a call starts
/// throws <see cref="OperationCanceledException"/> before anything is written and leaves the connection open.</para>
/// <para><b>One operation at a time.</b> A second call while one runs throws <see cref="InvalidOperationException"/>;
/// only <see cref="DisconnectAsync"/> may be called from another thread at any time (it aborts what is running).</para>
/// <para>The seed's <c>Cancel()</c> is the <see cref="CancellationToken"/> of each call.</para>
/// </remarks>
public sealed partial class AsyncSmtpSession : IAsyncDisposable, IDisposable
{
    private readonly SmtpSessionOptions _options;
    private readonly ILogger _protocolLog;
    private readonly ILogger _sessionLog;
    private readonly SmtpReplyParser _parser;
    private readonly SmtpDataEncoder _dataEncoder = new();
    private const string GreetingEntry = "(greeting)";
    private readonly ExpectedReplyQueue<Sending.ExpectedReply> _pendingReplies = new();
    private SmtpConnection? _connection;
    private CancellationTokenSource _operationCts;
    private CancellationTokenSource _readCts;
    private CancellationTokenRegistration _callerRegistration;
    private CancellationTokenRegistration _callerReadRegistration;
    private CancellationToken _callerToken;
    private TimeSpan _currentTimeout;
    private TimeSpan _currentReadTimeout;
    private int _busy;

    /// <summary>Counts operations, so that a read started in one can be told from one started in an earlier one.</summary>
    private int _operationNumber;

    /// <summary><see cref="NotDisposed"/>, <see cref="DisposeStarted"/> (QUIT of <see cref="DisposeAsync"/> in progress) or <see cref="Disposed"/>.</summary>
    private int _disposeState;

    /// <summary>Creates a disconnected session.</summary>
    /// <param name="options">Settings; <see langword="null"/> for the defaults. Copied: later changes have no effect.</param>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range (see <see cref="SmtpSessionOptions"/>).</exception>
    public AsyncSmtpSession(SmtpSessionOptions? options = null)
    {
        _options = (options ?? new SmtpSessionOptions()).Clone();
        _options.Validate();
        var loggerFactory = _options.LoggerFactory ?? NullLoggerFactory.Instance;
        _protocolLog = loggerFactory.CreateLogger("MailPipe.Protocol");
        _sessionLog = loggerFactory.CreateLogger("MailPipe.Session");
        _parser = new SmtpReplyParser(_options.Limits);
        _operationCts = NewOperationSource();
        _readCts = NewOperationSource();
    }

    /// <summary>Where the session stands.</summary>
    public SmtpSessionState State { get; private set; }

    /// <summary>Whether a connection is open (the state is not <see cref="SmtpSessionState.Disconnected"/>).</summary>
    public bool IsConnected => State != SmtpSessionState.Disconnected && Volatile.Read(ref _connection) is not null;

    /// <summary>The extensions from the last positive EHLO reply (RFC 5321 §4.1.1.1); <see cref="SmtpCapabilities.None"/> before EHLO, after HELO, after STARTTLS and after a disconnect.</summary>
    public SmtpCapabilities Capabilities { get; private set; } = SmtpCapabilities.None;

    /// <summary>The server's greeting (RFC 5321 §4.2, usually 220) on this connection, once read.</summary>
    public SmtpReply? Greeting { get; private set; }

    /// <summary>The last reply received on this session, for code written in the seed's style (<c>ReplyCode()</c>, <c>ReplyText()</c>, <c>EnhancedStatusCode()</c>).</summary>
    public SmtpReply? LastReply { get; private set; }

    /// <summary>The host name given to <c>ConnectAsync</c>, used for TLS server-name checks; <see langword="null"/> for a caller's stream.</summary>
    public string? Host { get; private set; }

    /// <summary>The number of commands written whose replies have not been read yet.</summary>
    public int PendingReplyCount
    {
        get
        {
            return _pendingReplies.Count;
        }
    }

    /// <summary>
    /// How many times this session has waited for the server with nothing more to send: the protocol round trips
    /// since it was created (RFC 2920 §3.1 counts the cost of a transaction in these). Connects and greetings are not
    /// counted. A diagnostic: with PIPELINING a transaction costs 2 with DATA and 1 with BDAT.
    /// </summary>
    public long RoundTrips { get; private set; }

    /// <summary>The settings in force.</summary>
    internal SmtpSessionOptions Options => _options;

    /// <summary>
    /// Opens a TCP connection to <paramref name="host"/>:<paramref name="port"/> and, when
    /// <paramref name="waitForGreeting"/>, reads the greeting (RFC 5321 §3.1). The seed's <c>Connect(address, port, wait)</c>.
    /// </summary>
    /// <param name="host">A host name, an IPv4 literal or an IPv6 literal (with or without brackets).</param>
    /// <param name="port">The TCP port, 1 to 65535; 25 by default (587 for submission, 465 for implicit TLS).</param>
    /// <param name="waitForGreeting"><see langword="false"/> to return as soon as TCP is up, as before implicit TLS (read the greeting later with <see cref="ReceiveReplyAsync"/>).</param>
    /// <param name="cancellationToken">Cancels the connect or the wait for the greeting.</param>
    /// <returns>The greeting (a negative one, such as 554, is returned too), or <see langword="null"/> when not waiting.</returns>
    /// <exception cref="ArgumentException"><paramref name="host"/> is empty or holds CR, LF or NUL.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not 1 to 65535.</exception>
    /// <exception cref="InvalidOperationException">The session is already connected, or another operation is running.</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.HostNotFound"/>, <see cref="SmtpErrorCode.ConnectionRefused"/>, <see cref="SmtpErrorCode.TimedOut"/> (after <see cref="SmtpSessionOptions.ConnectTimeout"/> or, for the greeting, <see cref="SmtpSessionOptions.ReceiveTimeout"/>), <see cref="SmtpErrorCode.SystemError"/>, or a protocol error in the greeting.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply?> ConnectAsync(string host, int port = 25, bool waitForGreeting = true, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(host);
        SmtpCommandWriter.ValidateArgument(host, nameof(host));
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var address = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;

        BeginOperation(cancellationToken, requiredState: SmtpSessionState.Disconnected);
        try
        {
            Log.Connecting(_sessionLog, address, port);
            using var telemetry = SessionTelemetry.StartConnect(this, address, port);
            SmtpConnection connection;
            StartTimer(_options.ConnectTimeout);
            try
            {
                connection = await SmtpConnection.ConnectAsync(address, port, _operationCts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not SmtpException)
            {
                throw Fail(ex, $"connecting to {address}:{port}");
            }

            StopTimer();
            Attach(connection, address);
            telemetry?.Ok();
            return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
        }
        finally
        {
            EndOperation();
        }
    }

    /// <summary>
    /// Starts a session over a stream the caller has connected (a proxy tunnel, an in-memory test server); with
    /// <paramref name="waitForGreeting"/> it reads the greeting. The session owns the stream from now on and disposes it.
    /// </summary>
    /// <param name="stream">A readable, writable, connected stream.</param>
    /// <param name="waitForGreeting">Whether to read the greeting now.</param>
    /// <param name="cancellationToken">Cancels the wait for the greeting.</param>
    /// <returns>The greeting, or <see langword="null"/> when not waiting.</returns>
    /// <exception cref="ArgumentException">The stream cannot read or write.</exception>
    /// <exception cref="InvalidOperationException">The session is already connected, or another operation is running.</exception>
    /// <exception cref="SmtpException">Reading the greeting failed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply?> ConnectAsync(Stream stream, bool waitForGreeting = true, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanRead || !stream.CanWrite)
        {
            throw new ArgumentException("The stream must be readable and writable.", nameof(stream));
        }

        BeginOperation(cancellationToken, requiredState: SmtpSessionState.Disconnected);
        try
        {
            Attach(SmtpConnection.FromStream(stream), host: null);
            return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
        }
        finally
        {
            EndOperation();
        }
    }

    /// <summary>Closes the connection at once, without QUIT (the seed's <c>Disconnect()</c>; send <see cref="QuitAsync"/> first for an orderly end). Safe from any thread; an operation in progress fails with <see cref="SmtpErrorCode.ConnectionClosed"/>.</summary>
    /// <returns>A completed task.</returns>
    public ValueTask DisconnectAsync()
    {
        AbortConnection();
        return ValueTask.CompletedTask;
    }

    private void AbortConnection()
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            connection.Abort();
            Log.Disconnected(_sessionLog);
        }

        if (Volatile.Read(ref _busy) == 0)
        {
            // Idle: reset now. Otherwise the running operation resets the session state when it ends, on its own flow.
            ResetConnectionState();
        }
    }

    /// <summary>Sends QUIT with a 5-second limit when the session is connected and idle, then closes the connection. Never throws for the server's or the network's sake.</summary>
    /// <returns>A task that completes when the connection is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposeState, DisposeStarted) != NotDisposed)
        {
            return;
        }

        if (State == SmtpSessionState.Connected && Volatile.Read(ref _busy) == 0)
        {
            using var quitLimit = new CancellationTokenSource(TimeSpan.FromSeconds(5), _options.TimeProvider);
            try
            {
                await QuitAsync(quitLimit.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SmtpException or OperationCanceledException or InvalidOperationException)
            {
                // Best effort: the connection is closed below either way.
            }
        }

        Volatile.Write(ref _disposeState, Disposed);
        await DisconnectAsync().ConfigureAwait(false);
        ForgetConnection();
        ReleaseTokenSources();
    }

    /// <summary>Closes the connection at once, without QUIT. Prefer <see cref="DisposeAsync"/>. From now on every operation throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        Volatile.Write(ref _disposeState, Disposed);
        AbortConnection();
        ForgetConnection();
        ReleaseTokenSources();
    }

    /// <summary>
    /// Disposes the token sources when no operation runs, taking the busy flag for good (every later call fails on the
    /// disposed check first). An operation still running (it fails now that the connection is closed) keeps them.
    /// </summary>
    private void ReleaseTokenSources()
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) == 0)
        {
            _operationCts.Dispose();
            _readCts.Dispose();
        }
    }

    private const int NotDisposed = 0;
    private const int DisposeStarted = 1;
    private const int Disposed = 2;

    /// <summary>After <see cref="Dispose"/> or <see cref="DisposeAsync"/>: what the properties say of the closed connection is cleared too.</summary>
    private void ForgetConnection()
    {
        Greeting = null;
        LastReply = null;
        Host = null;
    }

    private void Attach(SmtpConnection connection, string? host)
    {
        _connection = connection;
        Host = host;
        State = SmtpSessionState.Connected;
        Greeting = null;
        _parser.Reset();
        _readAheadPending = false;
        _readAhead = default;
        _pendingReplies.Clear();
        _pendingReplies.Add(GreetingEntry);

        SessionTelemetry.Attached(this, connection.RemoteEndPoint, host);

        if (_sessionLog.IsEnabled(LogLevel.Debug))
        {
            Log.Connected(_sessionLog, connection.RemoteEndPoint?.ToString() ?? "stream");
        }
    }

    private async Task<SmtpReply> ReadGreetingAsync()
    {
        var greeting = await ReadReplyAsync(_options.ReceiveTimeout).ConfigureAwait(false);
        Greeting = greeting;
        return CloseIfServiceClosing(greeting);
    }

    private void ResetConnectionState()
    {
        SessionTelemetry.ConnectionEnded(this);
        State = SmtpSessionState.Disconnected;
        Capabilities = SmtpCapabilities.None;
        _pendingReplies.Clear();

        _parser.Reset();
        _readAheadPending = false;
        _readAhead = default;
        _dataEncoder.Reset();
        _resetBeforeNextMail = false;
        ResetTlsState();
        ResetAuthState();
    }

    /// <summary>
    /// Closes the connection after a failure; the exception that explains it goes to the caller. Safe from the
    /// concurrent reply reader: it only aborts the connection; the session's state is reset when the operation ends,
    /// on the caller's flow (<see cref="EndOperation"/>).
    /// </summary>
    private void Break(string reason)
    {
        var connection = Interlocked.Exchange(ref _connection, null);
        if (connection is not null)
        {
            connection.Abort();
            Log.ConnectionBroken(_sessionLog, reason);
        }
    }

    private CancellationTokenSource NewOperationSource() => new(Timeout.InfiniteTimeSpan, _options.TimeProvider);

    /// <summary>The operation guard: one operation at a time, in the right state, with the caller's token linked to the timeout source.</summary>
    /// <exception cref="InvalidOperationException">Another operation runs, or the state is wrong.</exception>
    /// <exception cref="OperationCanceledException">The token is already cancelled (nothing was written: the connection stays open and usable).</exception>
    private void BeginOperation(CancellationToken cancellationToken, SmtpSessionState requiredState = SmtpSessionState.Connected, bool allowData = false, bool allowPendingReplies = false)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposeState) == Disposed, this);
        if (Interlocked.Exchange(ref _busy, 1) != 0)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposeState) == Disposed, this);
            throw new InvalidOperationException("Another operation is in progress on this SMTP session; await it first (one operation at a time).");
        }

        var state = State;
        var stateOk = state == requiredState || (allowData && state == SmtpSessionState.SendingData);
        if (!stateOk)
        {
            Volatile.Write(ref _busy, 0);
            throw new InvalidOperationException(state switch
            {
                SmtpSessionState.Disconnected => "The SMTP session is not connected; call ConnectAsync first.",
                SmtpSessionState.SendingData when requiredState == SmtpSessionState.Connected => "The SMTP session is sending message data; finish it with EndMessageDataAsync (or a SendMessageDataAsync overload) first.",
                SmtpSessionState.Connected when requiredState == SmtpSessionState.SendingData => "Message data can only be sent after DataAsync returned 354.",
                _ => "The SMTP session is already connected; call DisconnectAsync or QuitAsync first.",
            });
        }

        if (!allowPendingReplies && state != SmtpSessionState.Disconnected)
        {
            var pending = _pendingReplies.Count;

            if (pending > 0)
            {
                Volatile.Write(ref _busy, 0);
                throw new InvalidOperationException(
                    $"{pending} repl(ies) to earlier commands (or the greeting) have not been read; read them with ReceiveReplyAsync first, or every later reply would be taken for the wrong command.");
            }
        }

        if (cancellationToken.IsCancellationRequested)
        {
            // Nothing was written: nothing to abort, the session stays usable (#17).
            Volatile.Write(ref _busy, 0);
            cancellationToken.ThrowIfCancellationRequested();
        }

        _callerToken = cancellationToken;
        _operationNumber++;
        if (cancellationToken.CanBeCanceled)
        {
            _callerRegistration = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), _operationCts);
            _callerReadRegistration = cancellationToken.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), _readCts);
        }
    }

    private void EndOperation()
    {
        if (Volatile.Read(ref _connection) is null && State != SmtpSessionState.Disconnected)
        {
            // The connection was broken during the operation: reset the public state here, on the caller's flow.
            ResetConnectionState();
        }

        _callerRegistration.Dispose();
        _callerRegistration = default;
        _callerReadRegistration.Dispose();
        _callerReadRegistration = default;
        _callerToken = default;
        if (!_operationCts.TryReset())
        {
            _operationCts.Dispose();
            _operationCts = NewOperationSource();
        }

        if (!_readCts.TryReset())
        {
            _readCts.Dispose();
            _readCts = NewOperationSource();
        }

        Volatile.Write(ref _busy, 0);
    }

    private void StartTimer(TimeSpan timeout)
    {
        _currentTimeout = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _operationCts.CancelAfter(timeout);
        }
    }

    private void StopTimer()
    {
        if (_currentTimeout != Timeout.InfiniteTimeSpan && !_operationCts.IsCancellationRequested)
        {
            _operationCts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Starts the receive timer; separate from the send timer so that replies can be read while a long group is still being written (RFC 2920 §3.1 deadlock avoidance).</summary>
    private void StartReadTimer(TimeSpan timeout)
    {
        _currentReadTimeout = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _readCts.CancelAfter(timeout);
        }
    }

    private void StopReadTimer()
    {
        if (_currentReadTimeout != Timeout.InfiniteTimeSpan && !_readCts.IsCancellationRequested)
        {
            _readCts.CancelAfter(Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>Turns a failure during I/O into the exception the caller gets, and closes the connection.</summary>
    private Exception FailCore(Exception exception, string activity, bool reading = false)
    {
        var timerSource = reading ? _readCts : _operationCts;
        var timeout = reading ? _currentReadTimeout : _currentTimeout;
        if (exception is SmtpException { ErrorCode: SmtpErrorCode.TimedOut } alreadyTimedOut)
        {
            Break(alreadyTimedOut.Message);
            return alreadyTimedOut;
        }

        if (_callerToken.IsCancellationRequested)
        {
            Break($"cancelled while {activity}");
            return new OperationCanceledException($"The SMTP operation was cancelled while {activity}; the connection was closed.", exception, _callerToken);
        }

        if (timerSource.IsCancellationRequested)
        {
            Break($"timed out while {activity}");
            return new SmtpException(
                SmtpErrorCode.TimedOut,
                $"Timed out after {timeout.TotalSeconds:0.###} s while {activity}; the connection was closed.",
                new TimeoutException($"No progress within {timeout}.", exception));
        }

        if (exception is SmtpException smtpException)
        {
            Break(smtpException.Message);
            return smtpException;
        }

        var code = TransportErrors.Classify(exception);
        Break($"{code} while {activity}");
        return new SmtpException(code, $"{TransportErrors.Describe(code)} while {activity}: {exception.Message}", exception);
    }

    /// <summary>Throws when the session is in the middle of another operation; for <see cref="DisposeAsync"/> style checks.</summary>
    private SmtpConnection Connection => _connection ?? throw new SmtpException(SmtpErrorCode.ConnectionClosed, "The connection was closed.");
}
