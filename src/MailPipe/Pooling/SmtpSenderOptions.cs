using System.Diagnostics.Metrics;
using System.Net;
using MailPipe.Protocol;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>
/// Settings of an <see cref="SmtpSender"/>: where to connect and who to be, the pool, the timeouts. Read when the
/// sender is created (copied); later changes have no effect on it.
/// </summary>
public sealed class SmtpSenderOptions
{
    /// <summary>The server: a host name, an IPv4 literal or an IPv6 literal. Required.</summary>
    public string Host { get; set; } = string.Empty;

    /// <summary>The TCP port. Default 587 (submission, RFC 6409); 465 for implicit TLS, 25 for relay.</summary>
    public int Port { get; set; } = 587;

    /// <summary>How connections are protected. Default <see cref="SmtpTlsMode.StartTlsRequired"/> (no silent downgrade).</summary>
    public SmtpTlsMode TlsMode { get; set; } = SmtpTlsMode.StartTlsRequired;

    /// <summary>TLS settings: server name, certificate policy, extra trusted roots (<see cref="SmtpTlsOptions"/>).</summary>
    public SmtpTlsOptions Tls { get; set; } = new();

    /// <summary>
    /// The name in EHLO (RFC 5321 §4.1.1.1): a fully qualified domain name or an address literal. Default
    /// <see langword="null"/>: the machine's name when it is fully qualified (has a dot, is not <c>localhost</c>),
    /// else the address literal of the connection's local end, such as <c>[127.0.0.1]</c>.
    /// </summary>
    public string? EhloName { get; set; }

    /// <summary>A user name and password for AUTH (RFC 4954), used on every new connection; <see langword="null"/> (default) for none.</summary>
    public NetworkCredential? Credentials { get; set; }

    /// <summary>
    /// Returns the user name and password for AUTH, called for each new connection (so that a rotated secret is used);
    /// takes precedence over <see cref="Credentials"/>. An exception it throws makes the waiting messages
    /// <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.AuthenticationError"/> (the exception as its
    /// cause, no AUTH sent): transient (<see cref="SmtpException.IsTransient"/>, so a retry such as MailPipe.Resilience's
    /// sends again) for a failure of the provider's own I/O — an <see cref="System.Net.Http.HttpRequestException"/> without
    /// a status code or with 408, 429 or 5xx, a <see cref="TimeoutException"/> (also HttpClient.Timeout's <see cref="TaskCanceledException"/>, or any cancellation of its own), an <see cref="IOException"/> (not a
    /// missing file) or a <see cref="System.Net.Sockets.SocketException"/> — and permanent for anything else (an HTTP
    /// 4xx, a bug, a missing secret). An <see cref="SmtpException"/> it throws is kept as it is, so a provider can
    /// decide itself (<c>new SmtpException(SmtpErrorCode.AuthenticationError, ..., inner) { IsTransient = true }</c>).
    /// One that has not returned within <see cref="SmtpTimeouts.Reply"/> is cancelled and not waited for: its own I/O did
    /// not complete in time (<see cref="SmtpErrorCode.AuthenticationError"/> around a <see cref="TimeoutException"/>, transient, as an elapsed HttpClient.Timeout).
    /// </summary>
    public Func<CancellationToken, ValueTask<NetworkCredential>>? CredentialsProvider { get; set; }

    /// <summary>The mailbox an OAuth 2.0 token is for (XOAUTH2, OAUTHBEARER; RFC 7628); used with <see cref="AccessTokenProvider"/>.</summary>
    public string? OAuthUserName { get; set; }

    /// <summary>
    /// Returns a current OAuth 2.0 access token, called for each new connection; takes precedence over the password
    /// settings. As with <see cref="CredentialsProvider"/>, an exception it throws makes the waiting messages
    /// <see cref="SmtpSendOutcome.NotSent"/> (<see cref="SmtpErrorCode.AuthenticationError"/>, transient only for a
    /// failure of its own I/O), and one that has not returned within <see cref="SmtpTimeouts.Reply"/> is cancelled and
    /// not waited for (transient, around a <see cref="TimeoutException"/>).
    /// </summary>
    public Func<CancellationToken, ValueTask<string>>? AccessTokenProvider { get; set; }

    /// <summary>The AUTH mechanism choice (<see cref="SmtpAuthenticationOptions"/>); <see langword="null"/> for the automatic choice.</summary>
    public SmtpAuthenticationOptions? Authentication { get; set; }

    /// <summary>The most connections open at once (opening ones included). Default 4; minimum 1.</summary>
    public int MaxConnections { get; set; } = 4;

    /// <summary>
    /// How many messages one connection sends before it is closed with QUIT and replaced (providers cap messages
    /// per connection). Default 100; 0 for no limit.
    /// </summary>
    public int MaxMessagesPerConnection { get; set; } = 100;

    /// <summary>
    /// The most "nonmail" commands a server lets one connection send before it drops it: Exim's
    /// <c>smtp_accept_max_nonmail</c> (10 by default) counts every NOOP and every RSET but the first after a message's
    /// data (so one RSET per refused transaction) and answers the 11th with "554 Too many nonmail commands". The pool
    /// counts them as the replies come, takes more messages into a connection that has counted some only while every
    /// message in flight could add one and stay within it, and closes it with QUIT (and replaces it) before a NOOP and
    /// a RSET more could pass it (discard reason <see cref="SmtpSenderDiscardReason.NonMailLimit"/>). A fresh connection, which has counted none, takes a full batch until a server has
    /// ended one of this sender's sessions at a limit; from then on it is held to the limit from its first message too.
    /// Default 10; 0 for no limit.
    /// </summary>
    public int MaxNonMailCommandsPerConnection { get; set; } = 10;

    /// <summary>
    /// How many waiting messages one connection takes at a time as one pipelined batch; a new connection is opened
    /// only when every open one already has this many queued. Default 16; 1 disables coalescing.
    /// </summary>
    public int MaxBatchSize { get; set; } = 16;

    /// <summary>How long a connection may stay idle in the pool before it is closed with QUIT. Default 30 seconds; <see cref="Timeout.InfiniteTimeSpan"/> to keep idle connections (until the server closes them).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a connection may live (from its connect) before it is closed when next idle. Default 10 minutes; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// A connection idle for longer than this is checked with NOOP (RFC 5321 §4.1.1.9) before it is lent; a dead one
    /// is replaced without costing the message an attempt. Default 5 seconds; <see cref="Timeout.InfiniteTimeSpan"/>
    /// to check only for a closed connection or an unsolicited reply (always done, without a round trip).
    /// </summary>
    public TimeSpan NoopAfterIdle { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a message may wait for a connection (opening included) before it is
    /// <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.TimedOut"/>, counted from its
    /// <c>SendAsync</c>: a message a batch took but gave back unsent (its idle connection checked
    /// first, or the batch ended early) keeps that start; each retry on a fresh connection (<see cref="RetryOnFreshConnection"/>) waits anew. Default 30 seconds;
    /// <see cref="Timeout.InfiniteTimeSpan"/> to wait for as long as the caller's token allows.
    /// </summary>
    public TimeSpan AcquireTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Whether a message that was <see cref="SmtpSendOutcome.NotSent"/> because its connection failed is sent once more
    /// on a fresh connection: always when not a byte of its content was read (a content writer of
    /// <see cref="SmtpMessage.FromWriter"/>, such as MailPipe.MimeKit's, not yet called) or the content is in memory;
    /// never after part of a stream or pipe was read, or after a content writer ran. Once, or up to four attempts in all
    /// when each failure was a session the server ended at a limit after deciding other transactions on it (Exim's
    /// "554 Too many nonmail commands"). Default <see langword="true"/>.
    /// </summary>
    public bool RetryOnFreshConnection { get; set; } = true;

    /// <summary>
    /// How long <see cref="SmtpSender.DisposeAsync"/> waits for transactions in flight before it cancels them, counted
    /// from the start of the disposal (the QUIT on idle connections runs meanwhile, not before). Not a bound on the
    /// whole disposal: a connection closed then still waits up to 5 s for the reply to its QUIT. Default 5 seconds; at
    /// most 4294967294 ms (≈ 49.7 days), or <see cref="Timeout.InfiniteTimeSpan"/>.
    /// </summary>
    public TimeSpan DisposeTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The connection timeouts. Default <see cref="SmtpTimeouts.Interactive"/>; <see cref="SmtpTimeouts.Rfc5321"/> for the RFC's MTA values.</summary>
    public SmtpTimeouts Timeouts { get; set; } = SmtpTimeouts.Interactive;

    /// <summary>
    /// Protocol settings of each connection (pipelining, chunking, limits, cleartext AUTH); <see langword="null"/>
    /// (default) for the defaults. Its timeouts, <see cref="SmtpSessionOptions.Tls"/>,
    /// <see cref="SmtpSessionOptions.TimeProvider"/>, <see cref="SmtpSessionOptions.LoggerFactory"/> and
    /// <see cref="SmtpSessionOptions.MeterFactory"/> are replaced by this object's <see cref="Timeouts"/>,
    /// <see cref="Tls"/>, <see cref="TimeProvider"/>, <see cref="LoggerFactory"/> and <see cref="MeterFactory"/>.
    /// </summary>
    public SmtpSessionOptions? Session { get; set; }

    /// <summary>A name for logs and the <c>mailpipe.sender.name</c> tag of the metrics (several senders in one process). Default <see langword="null"/>: <c>host:port</c>. Senders of one name share their series: the connection counts, maximum and pending messages report the sum of those alive.</summary>
    public string? Name { get; set; }

    /// <summary>The clock of every timeout and pool lifetime. Default <see cref="TimeProvider.System"/>.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Where the pool's events (category <c>MailPipe.Pool</c>) and each connection's transcript go. Default: none.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Creates the <see cref="Meter"/> named <c>MailPipe</c> of the pool's instruments (see <see cref="SmtpSender.MeterName"/>); <see langword="null"/> (default): the process-wide meter <c>MailPipe</c> that every sender and session made without a factory shares.</summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>
    /// Messages one pipelined batch of a connection takes at most before it ends and the next starts (4,096). A batch
    /// keeps every result until it ends, and under steady load it would not end by itself: this bounds the memory of a
    /// busy connection (at the cost of one round trip without new messages per batch). Internal: for tests.
    /// </summary>
    internal int MaxMessagesPerBatch { get; set; } = 4096;

    /// <summary>Opens the transport for tests (a loopback proxy, an in-memory server) instead of a TCP connect.</summary>
    internal Func<CancellationToken, ValueTask<Stream>>? ConnectStream { get; set; }

    /// <summary>
    /// Tests only: called under the pool's lock with the caller's token when a taken message is about to wait again
    /// (given back unsent by its batch, or queued for its retry on a fresh connection), before it is marked waiting: a
    /// test cancels the token there, where a cancellation on another thread can land. Null otherwise (one field read,
    /// on the requeue path only).
    /// </summary>
    internal Action<CancellationToken>? BeforeRequeue { get; set; }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentException"><see cref="Host"/> is empty, holds a space or a control character, a port or a scheme, or <see cref="EhloName"/> is not a usable EHLO name.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A number or time is out of range.</exception>
    internal void Validate()
    {
        if (ConnectStream is null)
        {
            // Else the mistake was left to each connect: a misleading AuthenticationError for CR/LF, a failed name
            // lookup (as a network failure) for a blank or for "smtp.example.com:587".
            Transport.SmtpHostRules.Validate(Host, nameof(Host), nameof(Port));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(Port, 1, nameof(Port));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(Port, 65535, nameof(Port));
        if (!Enum.IsDefined(TlsMode))
        {
            throw new ArgumentOutOfRangeException(nameof(TlsMode), TlsMode, "Unknown TLS mode.");
        }

        ArgumentNullException.ThrowIfNull(Tls, nameof(Tls));
        ArgumentNullException.ThrowIfNull(Timeouts, nameof(Timeouts));
        Timer(Timeouts.Connect, "Timeouts.Connect");
        Timer(Timeouts.Send, "Timeouts.Send");
        Timer(Timeouts.Reply, "Timeouts.Reply");
        Timer(Timeouts.DataTermination, "Timeouts.DataTermination");
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConnections, 1, nameof(MaxConnections));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxMessagesPerConnection, nameof(MaxMessagesPerConnection));
        ArgumentOutOfRangeException.ThrowIfNegative(MaxNonMailCommandsPerConnection, nameof(MaxNonMailCommandsPerConnection));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBatchSize, 1, nameof(MaxBatchSize));
        Positive(IdleTimeout, nameof(IdleTimeout));
        Positive(MaxLifetime, nameof(MaxLifetime));
        Positive(NoopAfterIdle, nameof(NoopAfterIdle));
        Positive(AcquireTimeout, nameof(AcquireTimeout));
        Positive(DisposeTimeout, nameof(DisposeTimeout));
        if (DisposeTimeout > SmtpSessionOptions.MaxTimeout)
        {
            // It is a timer's (Task.WaitAsync): a longer one made DisposeAsync throw instead of disposing.
            throw new ArgumentOutOfRangeException(nameof(DisposeTimeout), DisposeTimeout, "Must be at most 49 days (4294967294 ms), or Timeout.InfiniteTimeSpan.");
        }
        if (EhloName is { } ehloName)
        {
            try
            {
                SmtpHelloName.Validate(ehloName);
            }
            catch (ArgumentException ex)
            {
                throw new ArgumentException($"EhloName '{ehloName}' is not a usable EHLO name (a domain or an address literal of at most 255 octets, no white space, CR, LF or NUL); leave it null for this machine's name.", nameof(EhloName), ex);
            }
        }

        if (OAuthUserName is null != AccessTokenProvider is null)
        {
            throw new ArgumentException("OAuthUserName and AccessTokenProvider go together.", nameof(AccessTokenProvider));
        }

        _ = CreateSessionOptions();
    }

    /// <summary>The settings of each connection's session (validated).</summary>
    internal SmtpSessionOptions CreateSessionOptions()
    {
        var session = Session?.Clone() ?? new SmtpSessionOptions();
        session.ConnectTimeout = Timeouts.Connect;
        session.SendTimeout = Timeouts.Send;
        session.ReceiveTimeout = Timeouts.Reply;
        session.DataTerminationTimeout = Timeouts.DataTermination;
        session.Tls = Tls.Clone();
        session.TimeProvider = TimeProvider;
        session.LoggerFactory = LoggerFactory;
        session.MeterFactory = MeterFactory;
        session.Validate();
        return session;
    }

    internal SmtpSenderOptions Clone()
    {
        var clone = (SmtpSenderOptions)MemberwiseClone();
        clone.Tls = Tls?.Clone()!;
        clone.Session = Session?.Clone();
        return clone;
    }

    /// <summary>A timeout that goes to a timer: named as set here, not as the session's property it becomes.</summary>
    private static void Timer(TimeSpan value, string name)
    {
        if (value != Timeout.InfiniteTimeSpan && (value <= TimeSpan.Zero || value > SmtpSessionOptions.MaxTimeout))
        {
            throw new ArgumentOutOfRangeException(name, value, "A timeout must be positive and at most 49 days (4294967294 ms), or Timeout.InfiniteTimeSpan.");
        }
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value != Timeout.InfiniteTimeSpan && value <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(name, value, "Must be positive or Timeout.InfiniteTimeSpan.");
        }
    }
}
