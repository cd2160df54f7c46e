using System.Security.Cryptography.X509Certificates;
using MimeKit;

namespace MailPipe.Cli;

/// <summary>The checked options of <c>mailpipe send</c>.</summary>
internal sealed class SendOptions : IDisposable
{
    /// <summary>The folder the embedded server saves to when none is given.</summary>
    public const string DefaultSaveDirectory = "./mailpipe-outbox";

    /// <summary>The message files, in order; empty to build a message from <see cref="FromMailbox"/>, <see cref="To"/>, <see cref="Subject"/> and <see cref="Body"/>.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>Whether <c>--from</c> was given (its mailbox may still be <see langword="null"/>: the null reverse-path).</summary>
    public bool FromGiven { get; init; }

    /// <summary>The <c>--from</c> mailbox; <see langword="null"/> for the null reverse-path or when not given.</summary>
    public MailboxAddress? FromMailbox { get; init; }

    /// <summary>The <c>--to</c> mailboxes, in order; empty when not given.</summary>
    public IReadOnlyList<MailboxAddress> To { get; init; } = [];

    /// <summary>The subject of a built message.</summary>
    public string? Subject { get; init; }

    /// <summary>The body of a built message.</summary>
    public string? Body { get; init; }

    /// <summary>The server; <see langword="null"/> for the embedded one.</summary>
    public ServerAddress? Server { get; init; }

    /// <summary>The name the client gives in EHLO/HELO.</summary>
    public required string HeloName { get; init; }

    /// <summary>Where the embedded server saves messages.</summary>
    public string SaveDirectory { get; init; } = DefaultSaveDirectory;

    /// <summary>Whether to print one JSON object per message.</summary>
    public bool Json { get; init; }

    /// <summary>Whether to print the SMTP transcript to standard error.</summary>
    public bool Trace { get; init; }

    /// <summary>Whether the transcript shows addresses unmasked.</summary>
    public bool LogAddresses { get; init; }

    /// <summary>The connect, send and reply timeout; <see langword="null"/> for MailPipe's defaults.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>
    /// The certificate authorities of <c>--ca-file</c>, trusted besides the system store for the server's certificate.
    /// They are checked and kept here for the session's TLS settings; they take effect once MailPipe's TLS API
    /// (STARTTLS and implicit TLS) is wired into <c>mailpipe send</c>.
    /// </summary>
    public X509Certificate2Collection? TrustedCertificateAuthorities { get; init; }

    /// <summary>The reverse-path given by <c>--from</c>: its address, empty for <c>&lt;&gt;</c>, <see langword="null"/> when not given.</summary>
    public string? FromAddress => FromGiven ? FromMailbox?.Address ?? string.Empty : null;

    /// <summary>The settings of the SMTP session.</summary>
    /// <param name="loggerFactory">Where the transcript goes, or <see langword="null"/>.</param>
    /// <returns>The session options.</returns>
    public SmtpSessionOptions CreateSessionOptions(Microsoft.Extensions.Logging.ILoggerFactory? loggerFactory)
    {
        var options = new SmtpSessionOptions { LoggerFactory = loggerFactory, LogAddresses = LogAddresses };
        if (Timeout is { } timeout)
        {
            options.ConnectTimeout = timeout;
            options.SendTimeout = timeout;
            options.ReceiveTimeout = timeout;
            options.DataTerminationTimeout = timeout;
        }

        return options;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (TrustedCertificateAuthorities is { } certificates)
        {
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }
        }
    }
}
