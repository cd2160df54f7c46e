using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>
/// Settings of an <see cref="AsyncSmtpSession"/>: timeouts, protocol limits, logging. Read when the session is
/// created; later changes to this object have no effect on it.
/// </summary>
public sealed class SmtpSessionOptions
{
    /// <summary>How long a TCP connect may take. Default 60 seconds. <see cref="Timeout.InfiniteTimeSpan"/> disables it.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long one send (a flush of commands or of a block of message data) may take. Default 3 minutes, the
    /// "data block" time of RFC 5321 §4.5.3.2.5. The seed's <c>SetSendTimeout</c>. While the reply to a message's end
    /// of data is due (a pipelined batch writes the next message behind it, and the server reads nothing while it
    /// processes that end), a send has <see cref="DataTerminationTimeout"/> instead when that is longer.
    /// </summary>
    public TimeSpan SendTimeout { get; set; } = TimeSpan.FromMinutes(3);

    /// <summary>
    /// How long the client waits for a reply. Default 5 minutes: RFC 5321 §4.5.3.2.1-3 (greeting, MAIL, RCPT; DATA
    /// initiation asks 2). The seed's <c>SetReceiveTimeout</c>.
    /// </summary>
    public TimeSpan ReceiveTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long the client waits for the reply to the end of message data. Default 10 minutes (RFC 5321 §4.5.3.2.6).</summary>
    public TimeSpan DataTerminationTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Limits on reply size that guard against hostile servers.</summary>
    public SmtpProtocolLimits Limits { get; set; } = SmtpProtocolLimits.Default;

    /// <summary>
    /// Where the transcript (<c>C:</c>/<c>S:</c> lines at Trace, category <c>MailPipe.Protocol</c>) and life-cycle
    /// events (Debug, category <c>MailPipe.Session</c>) go; the seed's <c>SetTraceOutput</c>. Default: none.
    /// </summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Whether the transcript shows mail addresses (personal data). Default <see langword="false"/>: the local part
    /// is masked (<c>MAIL FROM:&lt;***@example.com&gt;</c>). Message bodies and AUTH data are never logged.
    /// </summary>
    public bool LogAddresses { get; set; }

    /// <summary>
    /// Makes the <c>MailPipe</c> meter of the session's instruments (<see cref="MailPipeDiagnostics.MeterName"/>); null (the
    /// default) uses one process-wide meter. The DI package passes the container's factory.
    /// </summary>
    public System.Diagnostics.Metrics.IMeterFactory? MeterFactory { get; set; }

    /// <summary>The clock of every timeout. Default <see cref="TimeProvider.System"/>; tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>Flush the message data to the network each time this many bytes are buffered. Default 65,536 bytes; minimum 1,024.</summary>
    public int DataFlushThreshold { get; set; } = 64 * 1024;

    /// <summary>Whether <c>SendAsync</c> pipelines commands when the server offers PIPELINING (RFC 2920). Default <see langword="true"/>; switch off for servers that advertise it and misbehave.</summary>
    public bool UsePipelining { get; set; } = true;

    /// <summary>Whether <c>SendAsync</c> uses BDAT when the server offers CHUNKING (RFC 3030). Default <see langword="true"/>; off means DATA with dot-stuffing.</summary>
    public bool UseChunking { get; set; } = true;

    /// <summary>
    /// The size of a BDAT chunk in bytes (RFC 3030 §2). Default 262,144 (256 KiB); minimum 1,024. With PIPELINING a
    /// message of one chunk goes out with its envelope in one flush; a message of more than one waits for the replies to
    /// MAIL and the RCPTs before its first chunk (one round trip more), and sends no content when every recipient was
    /// refused.
    /// </summary>
    public int ChunkSize { get; set; } = 256 * 1024;

    /// <summary>
    /// With PIPELINING and CHUNKING, how many mail transactions of a batch may be written before the first of them
    /// has its final reply. Default 16; 1 disables overlapping.
    /// </summary>
    public int MaxTransactionsInFlight { get; set; } = 16;

    /// <summary>
    /// TLS settings for implicit TLS and STARTTLS: server name, certificate policy, extra trusted roots, the caller's
    /// <see cref="System.Net.Security.SslClientAuthenticationOptions"/>. Copied with these options; a method that takes
    /// its own <see cref="SmtpTlsOptions"/> uses that one instead for its handshake.
    /// </summary>
    public SmtpTlsOptions Tls { get; set; } = new();

    /// <summary>
    /// Whether mechanisms that send the password or a bearer token itself (AUTH PLAIN, LOGIN, XOAUTH2, OAUTHBEARER;
    /// RFC 4954 §4, RFC 4616 §6) may run on a connection without TLS. Default <see langword="false"/>: they throw
    /// <see cref="InvalidOperationException"/> before anything is sent, and the automatic choice skips them.
    /// Challenge-response mechanisms (SCRAM, CRAM-MD5, NTLM) are not affected.
    /// </summary>
    public bool AllowCleartextAuthentication { get; set; }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A timeout is zero or negative (other than infinite) or longer than 4294967294 ms, or a size is below its minimum.</exception>
    internal void Validate()
    {
        ValidateTimeout(ConnectTimeout, nameof(ConnectTimeout));
        ValidateTimeout(SendTimeout, nameof(SendTimeout));
        ValidateTimeout(ReceiveTimeout, nameof(ReceiveTimeout));
        ValidateTimeout(DataTerminationTimeout, nameof(DataTerminationTimeout));
        ArgumentNullException.ThrowIfNull(Limits, nameof(Limits));
        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
        Limits.Validate();
        ArgumentOutOfRangeException.ThrowIfLessThan(DataFlushThreshold, 1024, nameof(DataFlushThreshold));
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkSize, 1024, nameof(ChunkSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxTransactionsInFlight, 1, nameof(MaxTransactionsInFlight));

        ArgumentNullException.ThrowIfNull(Tls, nameof(Tls));
        Tls.Validate();
    }

    /// <summary>The longest finite timeout: what a timer (<c>CancellationTokenSource.CancelAfter</c>) takes, ≈ 49.7 days.</summary>
    internal static readonly TimeSpan MaxTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private static void ValidateTimeout(TimeSpan value, string name)
    {
        // A longer one passed here once and failed every wait later, as a network or AUTH error of each send.
        if (value != Timeout.InfiniteTimeSpan && (value <= TimeSpan.Zero || value > MaxTimeout))
        {
            throw new ArgumentOutOfRangeException(name, value, "A timeout must be positive and at most 49 days (4294967294 ms), or Timeout.InfiniteTimeSpan.");
        }
    }

    internal SmtpSessionOptions Clone()
    {
        var clone = (SmtpSessionOptions)MemberwiseClone();
        clone.Tls = Tls?.Clone()!;
        return clone;
    }
}
