namespace MailPipe;

/// <summary>
/// The settings of a sender registered with <c>services.AddMailPipe(...)</c>, in the shape of the configuration section
/// (<c>Smtp</c> in <c>appsettings.json</c>, <c>Smtp__Host</c> and so on in the environment). They are checked when the
/// application starts; every key, its default and its meaning are listed in the package README. Settings that have no
/// configuration key (a credentials provider, OAuth, protocol settings) are set in code with
/// <see cref="Microsoft.Extensions.DependencyInjection.MailPipeBuilderExtensions.ConfigureSender(Microsoft.Extensions.DependencyInjection.IMailPipeBuilder, Action{IServiceProvider, SmtpSenderOptions})"/>.
/// </summary>
/// <remarks>Not thread-safe: configured once at start-up, then read when the sender is created.</remarks>
public sealed class MailPipeOptions
{
    /// <summary>Key <c>Host</c>: the SMTP server, a host name or an IP address literal. Required.</summary>
    public string? Host { get; set; }

    /// <summary>Key <c>Port</c>: the TCP port, 1 to 65535. Default 587 (submission, RFC 6409); 465 for implicit TLS, 25 for relay.</summary>
    public int Port { get; set; } = 587;

    /// <summary>
    /// Key <c>TlsMode</c>: how connections are protected, by name: <c>None</c>, <c>Implicit</c>, <c>StartTlsRequired</c>
    /// or <c>StartTlsWhenAvailable</c> (<see cref="SmtpTlsMode"/>). Required, with no default: the choice is the user's.
    /// </summary>
    public SmtpTlsMode? TlsMode { get; set; }

    /// <summary>Key <c>UserName</c>: the user name for AUTH (RFC 4954); none by default (no AUTH). Goes with <see cref="Password"/>.</summary>
    public string? UserName { get; set; }

    /// <summary>Key <c>Password</c>: the password for AUTH; keep it in a secret store or the environment, not in <c>appsettings.json</c>.</summary>
    public string? Password { get; set; }

    /// <summary>
    /// Key <c>EhloName</c>: the name in EHLO (RFC 5321 §4.1.1.1). Default: the machine's name when fully qualified,
    /// else the address literal of the local end, such as <c>[127.0.0.1]</c>.
    /// </summary>
    public string? EhloName { get; set; }

    /// <summary>Keys <c>Tls:*</c>: the certificate policy.</summary>
    public MailPipeTlsOptions Tls { get; } = new();

    /// <summary>Keys <c>Pool:*</c>: the connection pool.</summary>
    public MailPipePoolOptions Pool { get; } = new();

    /// <summary>Keys <c>Timeouts:*</c>: the connection timeouts.</summary>
    public MailPipeTimeoutOptions Timeouts { get; } = new();

    /// <summary>Where the settings came from, for the validation messages: <c>Smtp:</c> for a section, <c>MailPipeOptions.</c> for code.</summary>
    internal string Source { get; set; } = "MailPipeOptions.";

    /// <summary>Values of the configuration section that could not be read (wrong type, unknown key), as messages.</summary>
    internal List<string> BindingErrors { get; } = [];
}

/// <summary>The certificate policy (configuration keys <c>Tls:*</c>).</summary>
/// <remarks>Not thread-safe: configured once at start-up.</remarks>
public sealed class MailPipeTlsOptions
{
    /// <summary>
    /// Key <c>Tls:CaFile</c>: a PEM file of extra trusted root certificates (a private CA, a test server's self-signed
    /// certificate), trusted besides the system's roots. Default none.
    /// </summary>
    public string? CaFile { get; set; }

    /// <summary>
    /// Key <c>Tls:AcceptCertificateNameMismatch</c>: accept a certificate issued to another name than <see cref="MailPipeOptions.Host"/>
    /// (a server reached by IP address). Default <see langword="false"/>; the chain must still be trusted.
    /// </summary>
    public bool AcceptCertificateNameMismatch { get; set; }
}

/// <summary>The connection pool (configuration keys <c>Pool:*</c>).</summary>
/// <remarks>Not thread-safe: configured once at start-up.</remarks>
public sealed class MailPipePoolOptions
{
    /// <summary>Key <c>Pool:MaxConnections</c>: the most connections open at once, at least 1. Default 4; keep it under the server's per-client limit.</summary>
    public int MaxConnections { get; set; } = 4;

    /// <summary>Key <c>Pool:MaxMessagesPerConnection</c>: messages sent on one connection before it is replaced; 0 for no limit. Default 100.</summary>
    public int MaxMessagesPerConnection { get; set; } = 100;

    /// <summary>
    /// Key <c>Pool:MaxNonMailCommandsPerConnection</c>: the most commands a server counts as "nonmail" (NOOP, and RSET
    /// after a refused transaction) on one connection before it drops it, as Exim's <c>smtp_accept_max_nonmail</c> does
    /// (10 by default); the pool replaces a connection before it (see <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/>).
    /// Set it to the server's own limit when that is lower; 0 for no limit. Default 10.
    /// </summary>
    public int MaxNonMailCommandsPerConnection { get; set; } = 10;

    /// <summary>Key <c>Pool:IdleTimeout</c>: how long a connection may stay idle before it is closed with QUIT (a TimeSpan string, <c>00:00:30</c>). Default 30 seconds.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Key <c>Pool:MaxLifetime</c>: how long a connection may live before it is replaced (<c>00:10:00</c>). Default 10 minutes.</summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromMinutes(10);
}

/// <summary>The connection timeouts (configuration keys <c>Timeouts:*</c>); the other timeouts keep <see cref="SmtpTimeouts.Interactive"/>.</summary>
/// <remarks>Not thread-safe: configured once at start-up.</remarks>
public sealed class MailPipeTimeoutOptions
{
    /// <summary>Key <c>Timeouts:Connect</c>: how long a TCP connect may take (<c>00:00:10</c>). Default 10 seconds.</summary>
    public TimeSpan Connect { get; set; } = SmtpTimeouts.Interactive.Connect;

    /// <summary>
    /// Key <c>Timeouts:Reply</c>: how long to wait for a reply (greeting, EHLO, MAIL, RCPT, ...; <c>00:00:30</c>). Default
    /// 30 seconds. The wait for the reply to the end of data is the larger of this and 60 seconds.
    /// </summary>
    public TimeSpan Reply { get; set; } = SmtpTimeouts.Interactive.Reply;
}
