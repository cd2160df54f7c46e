using System.Globalization;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace MailPipe.Cli;

/// <summary>The checked connection options of <c>mailpipe send</c> and <c>mailpipe probe</c>.</summary>
internal sealed class ConnectionSettings : IDisposable
{
    /// <summary>The server; <see langword="null"/> for send's embedded one.</summary>
    public ServerAddress? Server { get; init; }

    /// <summary>The name the client gives in EHLO/HELO, or <see langword="null"/> for MailPipe's default (<see cref="AsyncSmtpSession.GetDefaultClientDomainAsync"/>).</summary>
    public string? HeloName { get; init; }

    /// <summary>The client certificate of <c>--tls-cert</c>, with its private key, or <see langword="null"/>.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>How the connection is protected.</summary>
    public SmtpTlsMode TlsMode { get; init; } = SmtpTlsMode.None;

    /// <summary>The name the certificate must carry (<c>--tls-name</c>); <see langword="null"/> for the server's host.</summary>
    public string? TlsName { get; init; }

    /// <summary>Whether a certificate whose only fault is its name is accepted.</summary>
    public bool AcceptNameMismatch { get; init; }

    /// <summary>The certificate authorities of <c>--ca-file</c>, trusted besides the system store.</summary>
    public X509Certificate2Collection? TrustedCertificateAuthorities { get; init; }

    /// <summary>The connect, handshake, send and reply timeout; <see langword="null"/> for MailPipe's defaults.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Whether to print the SMTP transcript to standard error.</summary>
    public bool Trace { get; init; }

    /// <summary>Whether the transcript shows addresses unmasked.</summary>
    public bool LogAddresses { get; init; }

    /// <summary>The TLS mode as the JSON output names it.</summary>
    public string TlsModeName => TlsMode switch
    {
        SmtpTlsMode.Implicit => "implicit",
        SmtpTlsMode.StartTlsRequired => "starttls",
        SmtpTlsMode.StartTlsWhenAvailable => "starttls-when-offered",
        _ => "none",
    };

    /// <summary>A TLS version as people write it: <c>TLSv1.3</c>.</summary>
    /// <param name="protocol">The negotiated protocol.</param>
    /// <returns>The name.</returns>
    public static string ProtocolName(SslProtocols protocol) => protocol switch
    {
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
        _ => protocol.ToString(),
    };

    /// <summary>The settings of the SMTP session.</summary>
    /// <param name="loggerFactory">Where the transcript goes, or <see langword="null"/>.</param>
    /// <param name="allowCleartextAuthentication">Whether PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER may run without TLS.</param>
    /// <param name="validationCallback">A certificate callback that decides alone (see <see cref="SmtpTlsOptions"/>), or <see langword="null"/> for MailPipe's policy.</param>
    /// <returns>The session options.</returns>
    public SmtpSessionOptions CreateSessionOptions(ILoggerFactory? loggerFactory, bool allowCleartextAuthentication = false, RemoteCertificateValidationCallback? validationCallback = null)
    {
        var tls = new SmtpTlsOptions { TargetHost = TlsName, AcceptCertificateNameMismatch = AcceptNameMismatch };
        if (TrustedCertificateAuthorities is { } authorities)
        {
            tls.TrustedRootCertificates.AddRange(authorities);
        }

        if (validationCallback is not null || ClientCertificate is not null)
        {
            tls.ClientAuthenticationOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = validationCallback };
            if (ClientCertificate is not null)
            {
                tls.ClientAuthenticationOptions.ClientCertificates = [ClientCertificate];
            }
        }

        var options = new SmtpSessionOptions
        {
            LoggerFactory = loggerFactory,
            LogAddresses = LogAddresses,
            Tls = tls,
            AllowCleartextAuthentication = allowCleartextAuthentication,
        };
        if (Timeout is { } timeout)
        {
            options.ConnectTimeout = timeout;
            options.SendTimeout = timeout;
            options.ReceiveTimeout = timeout;
            options.DataTerminationTimeout = timeout;
            tls.HandshakeTimeout = timeout;
        }

        return options;
    }

    /// <summary>The TLS state of a session for the reports, or <see langword="null"/> without TLS.</summary>
    /// <param name="session">The session.</param>
    /// <returns>The protocol, cipher suite and whether the certificate named the server.</returns>
    public static TlsInfo? Describe(AsyncSmtpSession session) => session.IsEncrypted
        ? new TlsInfo(ProtocolName(session.SslProtocol), session.NegotiatedCipherSuite?.ToString(), !session.CertificateNameMismatch)
        : null;

    /// <inheritdoc/>
    public void Dispose()
    {
        ClientCertificate?.Dispose();
        if (TrustedCertificateAuthorities is { } certificates)
        {
            foreach (var certificate in certificates)
            {
                certificate.Dispose();
            }
        }
    }
}

/// <summary>The TLS parameters of a connection, as reported.</summary>
/// <param name="Protocol">The TLS version, such as <c>TLSv1.3</c>.</param>
/// <param name="CipherSuite">The IANA cipher suite name, such as <c>TLS_AES_256_GCM_SHA384</c>.</param>
/// <param name="NameMatched">Whether the certificate named the server (otherwise it was accepted by <c>--accept-name-mismatch</c>).</param>
internal sealed record TlsInfo(string Protocol, string? CipherSuite, bool NameMatched)
{
    /// <summary>One line: <c>TLSv1.3 TLS_AES_256_GCM_SHA384</c>, with a note when the name did not match.</summary>
    /// <returns>The text.</returns>
    public override string ToString() => string.Create(
        CultureInfo.InvariantCulture,
        $"{Protocol} {CipherSuite}{(NameMatched ? string.Empty : " (certificate name mismatch accepted)")}");
}
