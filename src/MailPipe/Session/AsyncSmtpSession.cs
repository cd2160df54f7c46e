using MailPipe.Transmission;
using MailPipe.Transport;

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
    private readonly SmtpChannel _channel;

    /// <summary>The one disposal of <see cref="DisposeAsync"/>, for the calls made while it runs.</summary>
    private Task? _disposal;

    /// <summary>Creates a disconnected session.</summary>
    /// <param name="options">Settings; <see langword="null"/> for the defaults. Copied: later changes have no effect.</param>
    /// <exception cref="ArgumentNullException"><see cref="SmtpSessionOptions.Limits"/>, <see cref="SmtpSessionOptions.Tls"/> or <see cref="SmtpSessionOptions.TimeProvider"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of range (see <see cref="SmtpSessionOptions"/>).</exception>
    public AsyncSmtpSession(SmtpSessionOptions? options = null)
    {
        _options = (options ?? new SmtpSessionOptions()).Clone();
        _options.Validate();
        _channel = new SmtpChannel(this, _options, ResetConnectionState);
    }

    /// <summary>Where the session stands.</summary>
    public SmtpSessionState State
    {
        get => _channel.State;
        private set => _channel.State = value;
    }

    /// <summary>Whether a connection is open (the state is not <see cref="SmtpSessionState.Disconnected"/>).</summary>
    public bool IsConnected => State != SmtpSessionState.Disconnected && _channel.IsOpen;

    /// <summary>The extensions from the last positive EHLO reply (RFC 5321 §4.1.1.1); <see cref="SmtpCapabilities.None"/> before EHLO, after HELO, after STARTTLS and after a disconnect.</summary>
    public SmtpCapabilities Capabilities { get; private set; } = SmtpCapabilities.None;

    /// <summary>The server's greeting (RFC 5321 §4.2, usually 220) on this connection, once read.</summary>
    public SmtpReply? Greeting { get; private set; }

    /// <summary>The last reply received on this session, for code written in the seed's style (<c>ReplyCode()</c>, <c>ReplyText()</c>, <c>EnhancedStatusCode()</c>).</summary>
    public SmtpReply? LastReply => _channel.LastReply;

    /// <summary>The host name given to <c>ConnectAsync</c>, used for TLS server-name checks; <see langword="null"/> for a caller's stream.</summary>
    public string? Host { get; private set; }

    /// <summary>The number of commands written whose replies have not been read yet.</summary>
    public int PendingReplyCount => _channel.PendingReplyCount;

    /// <summary>
    /// How many times this session has waited for the server with nothing more to send: the protocol round trips
    /// since it was created (RFC 2920 §3.1 counts the cost of a transaction in these). Connects and greetings are not
    /// counted. A diagnostic: with PIPELINING a transaction costs 2 with DATA and 1 with BDAT.
    /// </summary>
    public long RoundTrips => _channel.RoundTrips;

    /// <summary>The commands of this connection a server counts against its limit of "nonmail" commands (<see cref="SmtpChannel.NonMailCommands"/>).</summary>
    internal int NonMailCommands => _channel.NonMailCommands;

    /// <summary>The settings in force.</summary>
    internal SmtpSessionOptions Options => _options;

    /// <summary>The session's transmission channel (connection, reply queue, deadlines, failure funnel).</summary>
    internal SmtpChannel Channel => _channel;

    /// <summary>
    /// Opens a TCP connection to <paramref name="host"/>:<paramref name="port"/> and, when
    /// <paramref name="waitForGreeting"/>, reads the greeting (RFC 5321 §3.1). The seed's <c>Connect(address, port, wait)</c>.
    /// </summary>
    /// <param name="host">A host name, an IPv4 literal or an IPv6 literal (with or without brackets).</param>
    /// <param name="port">The TCP port, 1 to 65535; 25 by default (587 for submission, 465 for implicit TLS).</param>
    /// <param name="waitForGreeting"><see langword="false"/> to return as soon as TCP is up, as before implicit TLS (read the greeting later with <see cref="ReceiveReplyAsync"/>).</param>
    /// <param name="cancellationToken">Cancels the connect or the wait for the greeting.</param>
    /// <returns>The greeting (a negative one, such as 554, is returned too), or <see langword="null"/> when not waiting.</returns>
    /// <exception cref="ArgumentException"><paramref name="host"/> is empty, holds a space or a control character (CR, LF, NUL, tab), a port (<c>smtp.example.com:587</c>) or a scheme: not a host name or address alone.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="port"/> is not 1 to 65535.</exception>
    /// <exception cref="InvalidOperationException">The session is already connected, or another operation is running.</exception>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.HostNotFound"/>, <see cref="SmtpErrorCode.ConnectionRefused"/>, <see cref="SmtpErrorCode.TimedOut"/> (after <see cref="SmtpSessionOptions.ConnectTimeout"/> or, for the greeting, <see cref="SmtpSessionOptions.ReceiveTimeout"/>), <see cref="SmtpErrorCode.ConnectionClosed"/> (<see cref="DisconnectAsync"/> or <see cref="Dispose"/> from another thread while connecting), <see cref="SmtpErrorCode.SystemError"/>, or a protocol error in the greeting.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply?> ConnectAsync(string host, int port = 25, bool waitForGreeting = true, CancellationToken cancellationToken = default)
    {
        SmtpHostRules.Validate(host, nameof(host), "port");
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        var address = host.Length > 2 && host[0] == '[' && host[^1] == ']' ? host[1..^1] : host;

        using var operation = BeginOperation(cancellationToken, requiredState: SmtpSessionState.Disconnected);
        using var telemetry = SessionTelemetry.StartConnect(this, address, port);
        Attach(await _channel.ConnectAsync(address, port).ConfigureAwait(false), address);
        telemetry?.Ok();
        return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
    }

    /// <summary>
    /// Starts a session over a stream the caller has connected (a proxy tunnel, an in-memory test server); with
    /// <paramref name="waitForGreeting"/> it reads the greeting. The session owns the stream from now on and disposes it
    /// (an exception its Dispose throws is ignored). A read, write or flush of the stream ends at a timeout, a
    /// cancellation or <see cref="DisconnectAsync"/> even when the stream ignores its token or its dispose does not end
    /// it: the session then gives that operation up, leaves it to the stream and closes the connection.
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

        using var operation = BeginOperation(cancellationToken, requiredState: SmtpSessionState.Disconnected);
        Attach(SmtpConnection.FromStream(stream), host: null);
        return waitForGreeting ? await ReadGreetingAsync().ConfigureAwait(false) : null;
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
        _channel.Abort();
        if (!_channel.IsBusy)
        {
            // Idle: reset now. Otherwise the running operation resets the session state when it ends, on its own flow.
            ResetConnectionState();
        }
    }

    /// <summary>Sends QUIT with a 5-second limit when the session is connected and idle, then closes the connection. Never throws for the server's or the network's sake.</summary>
    /// <returns>A task that completes when the connection is closed (for a call made while another disposal runs: when that one is over).</returns>
    public ValueTask DisposeAsync()
    {
        // One disposal: a call made while it runs (its QUIT waiting for the reply) waits for it, so that it never
        // reports the connection closed sooner.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (Interlocked.CompareExchange(ref _disposal, done.Task, null) is { } running)
        {
            return new ValueTask(running);
        }

        if (!_channel.TryStartDispose())
        {
            done.SetResult(); // Dispose came first: the connection is closed.
            return ValueTask.CompletedTask;
        }

        return new ValueTask(DisposeOnceAsync(done));
    }

    private async Task DisposeOnceAsync(TaskCompletionSource done)
    {
        try
        {
            if (State == SmtpSessionState.Connected && !_channel.IsBusy)
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

            Dispose();
        }
        finally
        {
            done.TrySetResult();
        }
    }

    /// <summary>Closes the connection at once, without QUIT. Prefer <see cref="DisposeAsync"/>. From now on every operation throws <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _channel.MarkDisposed();
        AbortConnection();
        Greeting = null;
        _channel.LastReply = null;
        Host = null;
        _channel.ReleaseTokenSources();
    }

    private void Attach(SmtpConnection connection, string? host)
    {
        _channel.Attach(connection);
        Host = host;
        Greeting = null;
        SessionTelemetry.Attached(this, connection.RemoteEndPoint, host);
    }

    private async Task<SmtpReply> ReadGreetingAsync()
    {
        var plaintext = !_channel.IsEncrypted;
        try
        {
            var greeting = await _channel.ReadReplyAsync(_options.ReceiveTimeout).ConfigureAwait(false);
            Greeting = greeting;
            if (greeting.IsServiceClosing)
            {
                // Refused with 421 (a server at its connection limit): the connection failed to open; its span says so.
                SessionTelemetry.ConnectionEnded(this, greeting.Code.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            return _channel.CloseIfServiceClosing(greeting);
        }
        catch (SmtpException ex)
        {
            // No greeting (closed, timed out, malformed, 421): the connection failed to open; its span says why.
            SessionTelemetry.ConnectionEnded(this, MailPipeTelemetry.ErrorType(ex));
            if (plaintext && ex.ErrorCode == SmtpErrorCode.TimedOut && !_channel.HasPartialReply)
            {
                // Not one line of a greeting in clear text: most likely a port of implicit TLS (465, RFC 8314 §3.3),
                // whose server waits for the client's TLS hello. Said, not guessed with a timeout of its own.
                throw new SmtpException(SmtpErrorCode.TimedOut, $"{ex.Message} No greeting came at all (RFC 5321 §3.1): the port may expect TLS from the first byte (implicit TLS, RFC 8314 §3.3, as port 465 does); connect with SmtpTlsMode.Implicit (or ConnectTlsAsync) there.", ex.InnerException);
            }

            throw;
        }
    }

    /// <summary>The connection has ended: the public state says so (on the operation's flow, or when idle).</summary>
    private void ResetConnectionState()
    {
        SessionTelemetry.ConnectionEnded(this);
        Capabilities = SmtpCapabilities.None;
        _channel.Reset();
        _resetBeforeNextMail = false;
        ResetTlsState();
        ResetAuthState();
    }

    /// <summary>The operation guard (<see cref="SmtpChannel.StartOperation"/>): one operation at a time, in the right state, with the caller's token linked to the deadlines.</summary>
    /// <returns>The operation's scope; disposing it ends the operation.</returns>
    private OperationScope BeginOperation(CancellationToken cancellationToken, SmtpSessionState requiredState = SmtpSessionState.Connected, bool allowData = false, bool allowPendingReplies = false) =>
        _channel.StartOperation(requiredState, allowData, allowPendingReplies, cancellationToken);
}
