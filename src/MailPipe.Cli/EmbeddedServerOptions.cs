using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Win32.SafeHandles;
using SmtpServer;
using SmtpServer.Authentication;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace MailPipe.Cli;

/// <summary>What the embedded server listens on, where it saves, and its limits.</summary>
internal sealed record EmbeddedServerOptions
{
    /// <summary>The default <see cref="MaxMessageSize"/>: 25 MiB.</summary>
    public const int DefaultMaxMessageSize = 25 * 1024 * 1024;

    /// <summary>The default <see cref="MaxRecipients"/>, as Postfix's <c>smtpd_recipient_limit</c>.</summary>
    public const int DefaultMaxRecipients = 1000;

    /// <summary>The default <see cref="IdleTimeout"/>: 5 minutes, as RFC 5321 §4.5.3.2.7 asks of a server.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The default <see cref="MaxConnections"/>.</summary>
    public const int DefaultMaxConnections = 100;

    /// <summary>Where to listen (default 127.0.0.1, a free port).</summary>
    public IPEndPoint EndPoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>The folder the messages are saved in (created if missing).</summary>
    public required string SaveDirectory { get; init; }

    /// <summary>The name in the greeting and the EHLO reply.</summary>
    public string ServerName { get; init; } = "localhost";

    /// <summary>The largest message taken, in bytes as SIZE counts them (advertised as SIZE, RFC 1870: without the doubled dots); a larger one gets 552, and data that grows past it before its end also the close.</summary>
    public int MaxMessageSize { get; init; } = DefaultMaxMessageSize;

    /// <summary>The most recipients per message; more get 452.</summary>
    public int MaxRecipients { get; init; } = DefaultMaxRecipients;

    /// <summary>How long the server waits for the client's next bytes before it answers 421 and closes.</summary>
    public TimeSpan IdleTimeout { get; init; } = DefaultIdleTimeout;

    /// <summary>How many connections may be open at once.</summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>The certificate for STARTTLS (RFC 3207), with its private key; <see langword="null"/> for no STARTTLS.</summary>
    public X509Certificate2? Certificate { get; init; }

    /// <summary>The AUTH PLAIN/LOGIN check (RFC 4954), or <see langword="null"/> for no AUTH. AUTH is offered only after STARTTLS when there is a certificate.</summary>
    public EmbeddedServer.Authenticator? Authenticator { get; init; }

    /// <summary>Whether MAIL needs AUTH first (530 otherwise).</summary>
    public bool AuthenticationRequired { get; init; }

    /// <summary>Called for each message once it is saved, before its 250; from the session's thread, so it must be quick and thread-safe.</summary>
    public Action<SavedMessage>? Received { get; init; }
}

/// <summary>A message the embedded server saved.</summary>
/// <param name="Time">When it was saved.</param>
/// <param name="From">The reverse-path (MAIL FROM), empty for the null path.</param>
/// <param name="To">The forward-paths (RCPT TO), in order.</param>
/// <param name="Size">The bytes saved.</param>
/// <param name="Path">The file.</param>
/// <param name="Remote">The client's address and port.</param>
/// <param name="Tls">Whether the message came over TLS.</param>
/// <param name="User">The user name the client authenticated as, or <see langword="null"/>.</param>
internal sealed record SavedMessage(DateTimeOffset Time, string From, IReadOnlyList<string> To, long Size, string Path, EndPoint? Remote, bool Tls, string? User);
