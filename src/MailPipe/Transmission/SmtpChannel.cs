using System.IO.Pipelines;
using MailPipe.Transport;
using Microsoft.Extensions.Logging;

namespace MailPipe.Transmission;

/// <summary>
/// The transmission channel of one session (RFC 5321 §2.3.7): the connection's pipes, the reply parser, THE one queue
/// of expected replies (an entry is added in the call that writes its command, so queue order is wire order), the send
/// and receive deadlines (<see cref="TimeProvider"/>), the round-trip count, the unsolicited-reply read-ahead, the
/// transcript, and one failure funnel: <see cref="Fail"/> classifies, <see cref="Break"/> closes once and keeps the
/// first reason. One object per session, reused across its connections.
/// </summary>
/// <remarks>
/// Thread-safe entry points: <see cref="Break"/>, <see cref="Abort"/> and the concurrent reader
/// (<see cref="StartConcurrentReader"/>), which reads and matches replies while the operation's own flow writes; the
/// reader never touches the session's public state. Everything else runs on the operation's flow, one operation at a
/// time (<see cref="OperationScope"/>).
/// </remarks>
internal sealed partial class SmtpChannel
{
    private readonly SmtpSessionOptions _options;
    private readonly ILogger _protocolLog;
    private readonly ILogger _sessionLog;
    private readonly SmtpReplyParser _parser;
    private readonly ExpectedReplyQueue<ReplyTag> _replies = new();
    private SmtpConnection? _connection;
    private string? _closeReason;

    /// <summary>Why a write failed while <see cref="KeepInputOnWriteFailure"/> was set: the connection is to be closed once the replies are read.</summary>
    private string? _outputFailure;

    /// <summary>Creates the channel of a session; no connection yet.</summary>
    /// <param name="owner">The session, for <see cref="ObjectDisposedException"/>.</param>
    /// <param name="options">The session's settings (timeouts, limits, transcript).</param>
    /// <param name="connectionLost">Resets the layer above's connection state, on the operation's flow, when an operation ends after the connection was closed under it.</param>
    public SmtpChannel(object owner, SmtpSessionOptions options, Action connectionLost)
    {
        _owner = owner;
        _options = options;
        _connectionLost = connectionLost;
        var loggerFactory = options.LoggerFactory ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
        _protocolLog = loggerFactory.CreateLogger("MailPipe.Protocol");
        _sessionLog = loggerFactory.CreateLogger("MailPipe.Session");
        _parser = new SmtpReplyParser(options.Limits);
        _sendCts = NewDeadlineSource();
        _readCts = NewDeadlineSource();
    }

    /// <summary>The open connection, or <see langword="null"/> once closed (by <see cref="Break"/> or <see cref="Abort"/>) or before one.</summary>
    public SmtpConnection? Connection => Volatile.Read(ref _connection);

    /// <summary>The open connection.</summary>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.ConnectionClosed"/>: there is none (the message names the close's <see cref="CloseReason"/>).</exception>
    public SmtpConnection OpenConnection => Volatile.Read(ref _connection)
        ?? throw new SmtpException(SmtpErrorCode.ConnectionClosed, CloseReason is { } reason ? $"The connection was closed ({reason})." : "The connection was closed.");

    /// <summary>Whether a connection is open.</summary>
    public bool IsOpen => Volatile.Read(ref _connection) is not null;

    /// <summary>
    /// Called just before a message's end of data is written: when the connection is already closed (a
    /// <c>DisconnectAsync</c> from another thread, a break) or its output failed, nothing of that end can reach the
    /// server, so the message is not sent rather than of unknown outcome.
    /// </summary>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.ConnectionClosed"/>: the end of data cannot be written.</exception>
    public void ThrowIfEndOfDataCannotGoOut()
    {
        if (Volatile.Read(ref _connection) is null || Volatile.Read(ref _outputFailure) is not null)
        {
            throw new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed ({CloseReason ?? Volatile.Read(ref _outputFailure) ?? "closed"}) before the message's end of data was written; the message was not sent.");
        }
    }

    /// <summary>Whether lines of a reply not yet complete have been received (a reply cut short, rather than none at all).</summary>
    public bool HasPartialReply => _parser.HasPartialReply;

    /// <summary>Whether the open connection runs over TLS (for REQUIRETLS, RFC 8689, and the cleartext AUTH policy).</summary>
    public bool IsEncrypted => Volatile.Read(ref _connection) is { IsEncrypted: true };

    /// <summary>Where the connection stands; <see cref="SmtpSessionState.Disconnected"/> again only once the closed connection is forgotten (<see cref="Reset"/>), on the operation's flow.</summary>
    public SmtpSessionState State { get; set; }

    /// <summary>Whether the next reply expected is the greeting.</summary>
    public bool GreetingExpected => _replies.TryPeek(out var next) && next.Name == ReplyRules.Greeting;

    /// <summary>What is sent to the server (the open connection's writer).</summary>
    public PipeWriter Output => OpenConnection.Output;

    /// <summary>Fires once the open connection is closed (the caller's close, a break): for an operation's wait on the caller's code.</summary>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.ConnectionClosed"/>: no connection is open.</exception>
    public CancellationToken ConnectionClosed => OpenConnection.Closed;

    /// <summary>The one queue of expected replies; what a reply is filed with travels on its entry (<see cref="ReplyTag"/>).</summary>
    public ExpectedReplyQueue<ReplyTag> Replies => _replies;

    /// <summary>Commands written (and the greeting) whose replies have not been matched yet.</summary>
    public int PendingReplyCount => _replies.Count;

    /// <summary>Protocol round trips: waits for the server with nothing more to send (RFC 2920 §3.1).</summary>
    public long RoundTrips { get; set; }

    /// <summary>The last reply read (matched or not), for the session's <c>LastReply</c>.</summary>
    public SmtpReply? LastReply { get; set; }

    /// <summary>Whether server text of 334 replies is redacted in the transcript (an AUTH exchange runs).</summary>
    public bool RedactServerText { get; set; }

    /// <summary>Why the connection was closed (the first reason: a failure, or the caller's disconnect); <see langword="null"/> while open.</summary>
    public string? CloseReason => Volatile.Read(ref _closeReason);

    /// <summary>The <c>error.type</c> of the last failure that went through <see cref="Fail"/>, for telemetry.</summary>
    public string? TelemetryError { get; set; }

    /// <summary>The transcript logger (<c>MailPipe.Protocol</c>).</summary>
    public ILogger ProtocolLog => _protocolLog;

    /// <summary>
    /// Opens a TCP connection within <see cref="SmtpSessionOptions.ConnectTimeout"/> (and the operation's token);
    /// socket failures are mapped by <see cref="Fail"/>. Not attached yet.
    /// </summary>
    /// <param name="host">A host name or an address literal (without brackets).</param>
    /// <param name="port">The port.</param>
    /// <returns>The connection.</returns>
    /// <exception cref="SmtpException">The connect failed or timed out.</exception>
    /// <exception cref="OperationCanceledException">The operation's token was cancelled.</exception>
    public async Task<SmtpConnection> ConnectAsync(string host, int port)
    {
        Log.Connecting(_sessionLog, host, port);
        SmtpConnection connection;
        StartSendDeadline(_options.ConnectTimeout);
        using var connecting = StartConnecting();
        try
        {
            connection = await SmtpConnection.ConnectAsync(host, port, connecting.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not SmtpException)
        {
            var activity = $"connecting to {Transport.SmtpEndpointText.Format(host, port)}";
            throw ClosedWhileConnecting(ex, activity) ?? Fail(ex, activity);
        }
        finally
        {
            EndConnecting();
        }

        StopSendDeadline();
        return connection;
    }

    /// <summary>Starts using a new connection (<see cref="SmtpSessionState.Connected"/>): the greeting is the first reply expected.</summary>
    /// <param name="connection">The connection.</param>
    public void Attach(SmtpConnection connection)
    {
        Volatile.Write(ref _closeReason, null);
        _parser.Reset();
        ForgetReadAhead();
        _replies.Clear();
        ForgetEndReplies();
        _replies.Add(ReplyRules.Greeting);
        StartNonMailTally();
        State = SmtpSessionState.Connected;
        Volatile.Write(ref _connection, connection);
        CloseIfClosedWhileConnecting();
        if (_sessionLog.IsEnabled(LogLevel.Debug))
        {
            Log.Connected(_sessionLog, connection.RemoteEndPoint?.ToString() ?? "stream");
        }
    }

    /// <summary>Forgets what belonged to the closed connection (<see cref="SmtpSessionState.Disconnected"/>; on the operation's flow, or when idle).</summary>
    public void Reset()
    {
        State = SmtpSessionState.Disconnected;
        _replies.Clear();
        ForgetEndReplies();
        _parser.Reset();
        ForgetReadAhead();
        RedactServerText = false;
    }

    /// <summary>
    /// Closes the connection after a failure; the exception that explains it goes to the caller. Idempotent and safe
    /// from any thread (the concurrent reader): the first call closes and keeps its reason, later ones do nothing. The
    /// layer above resets its state when the operation ends, on the operation's flow.
    /// </summary>
    /// <param name="reason">Why, for the log and <see cref="CloseReason"/>.</param>
    /// <returns>Whether this call closed the connection.</returns>
    public bool Break(string reason)
    {
        if (Interlocked.Exchange(ref _connection, null) is not { } connection)
        {
            return false;
        }

        Volatile.Write(ref _closeReason, reason);
        connection.Abort();
        Log.ConnectionBroken(_sessionLog, reason);
        return true;
    }

    /// <summary>
    /// While set (a send's call), a write that finds the connection closed by the server (reset, broken pipe) leaves
    /// the reading side open: the replies the server sent before it closed can still be read (which transactions it
    /// answered, a close it announced). The caller closes the connection once they are read (<see cref="BreakIfOutputFailed"/>).
    /// </summary>
    public bool KeepInputOnWriteFailure { get; set; }

    /// <summary>Closes the connection if a write failed while <see cref="KeepInputOnWriteFailure"/> was set.</summary>
    /// <returns>Whether this call closed the connection.</returns>
    public bool BreakIfOutputFailed() => Interlocked.Exchange(ref _outputFailure, null) is { } reason && Break(reason);

    /// <summary>Closes the connection at once, for the caller (no QUIT); safe from any thread. An operation in progress fails with <see cref="SmtpErrorCode.ConnectionClosed"/>.</summary>
    /// <returns>Whether a connection was open.</returns>
    public bool Abort()
    {
        if (Interlocked.Exchange(ref _connection, null) is not { } connection)
        {
            AbortConnecting();
            return false;
        }

        Volatile.Write(ref _closeReason, "closed by the caller");
        connection.Abort();
        Log.Disconnected(_sessionLog);
        return true;
    }

    /// <summary>After a 421 the server closes the channel (RFC 5321 §3.8): close our side too, once the reply is returned.</summary>
    /// <param name="reply">A reply just read.</param>
    /// <returns><paramref name="reply"/>.</returns>
    public SmtpReply CloseIfServiceClosing(SmtpReply reply)
    {
        if (reply.IsServiceClosing)
        {
            Break("the server sent 421 (service closing transmission channel)");
        }

        return reply;
    }

    /// <summary>What stands for "the server closed the transmission channel" (421, or 221 to anything but QUIT): <see cref="SmtpErrorCode.ServiceNotAvailable"/> with the reply.</summary>
    /// <param name="reply">The closing reply.</param>
    /// <returns>The exception.</returns>
    public static SmtpException ServiceClosing(SmtpReply reply) =>
        new(SmtpErrorCode.ServiceNotAvailable, $"The server closed the transmission channel: {reply}") { Reply = reply };

    /// <summary>
    /// The failure funnel: turns a failure during I/O into the exception the caller gets — a timeout (ours), the
    /// caller's cancellation, a transport failure (<see cref="TransportErrors"/>) or a protocol violation — and
    /// closes the connection (<see cref="Break"/>).
    /// </summary>
    /// <param name="exception">What was thrown.</param>
    /// <param name="activity">What was being done, for the message (<c>"waiting for the reply to DATA"</c>).</param>
    /// <param name="reading">Whether the receive deadline (not the send deadline) was running.</param>
    /// <returns>The exception to throw.</returns>
    public Exception Fail(Exception exception, string activity, bool reading = false)
    {
        var failure = Classify(exception, activity, reading);
        TelemetryError = MailPipeTelemetry.ErrorType(failure);
        return failure;
    }

    private Exception Classify(Exception exception, string activity, bool reading)
    {
        var timerSource = reading ? _readCts : _sendCts;
        var timeout = reading ? _readTimeout : _sendTimeout;
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

        // A failure after our own close (DisconnectAsync from another thread, a Break) is that close, whatever the
        // stream threw for the read it had pending: a stream given to ConnectAsync(Stream) may throw anything once disposed.
        if (!IsOpen && CloseReason is { } closedReason)
        {
            return new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed ({closedReason}) while {activity}.", exception);
        }

        var code = TransportErrors.Classify(exception);
        if (!reading && code == SmtpErrorCode.ConnectionClosed && KeepInputOnWriteFailure && IsOpen)
        {
            Volatile.Write(ref _outputFailure, $"{code} while {activity}");
        }
        else
        {
            Break($"{code} while {activity}");
        }

        // The OS's text only when it says more than the code's words ("Connection refused ...: Connection refused"); the
        // inner exceptions' too (a TLS alert after the handshake is "The decryption operation failed, see inner exception.").
        var words = TransportErrors.Describe(code);
        var reason = exception.InnerException is null ? exception.Message : TransportErrors.Reason(exception);
        var detail = string.Equals(reason, words, StringComparison.OrdinalIgnoreCase) ? "." : $": {reason}";
        return new SmtpException(code, $"{words} while {activity}{detail}", exception);
    }
}
