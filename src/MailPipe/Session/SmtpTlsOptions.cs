using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe;

/// <summary>
/// TLS settings for implicit TLS (RFC 8314) and STARTTLS (RFC 3207): the server name to check, the certificate policy,
/// extra trusted roots, and the caller's <see cref="SslClientAuthenticationOptions"/> (client certificates, protocol
/// versions, cipher policy, revocation, custom validation). Set once in <see cref="SmtpSessionOptions.Tls"/>, or pass
/// to <see cref="AsyncSmtpSession.ConnectTlsAsync(SmtpTlsOptions, bool, CancellationToken)"/> and
/// <see cref="AsyncSmtpSession.StartTlsAsync(SmtpTlsOptions?, CancellationToken)"/> for one handshake.
/// </summary>
/// <remarks>
/// <para><b>The certificate decision</b>, made for each handshake in this order:</para>
/// <list type="number">
/// <item>The platform checks the chain and the name (<see cref="SslPolicyErrors"/>), using <see cref="TargetHost"/>
/// (or the host given to <c>ConnectAsync</c>) for SNI and the name check (RFC 6125).</item>
/// <item>When the chain is not trusted and <see cref="TrustedRootCertificates"/> is not empty, the chain is built again
/// with <see cref="X509ChainTrustMode.CustomRootTrust"/> on those roots (server-authentication EKU, the revocation mode
/// of <see cref="ClientAuthenticationOptions"/>); if it builds, the chain error is dropped. System roots therefore
/// keep working next to the extra ones.</item>
/// <item>With a <see cref="SslClientAuthenticationOptions.RemoteCertificateValidationCallback"/> in
/// <see cref="ClientAuthenticationOptions"/>, that callback decides alone: it gets the errors left after step 2, and
/// <see cref="AcceptCertificateNameMismatch"/> is not consulted. Otherwise the certificate is accepted when no error
/// is left, or when the only error is <see cref="SslPolicyErrors.RemoteCertificateNameMismatch"/> and
/// <see cref="AcceptCertificateNameMismatch"/> is <see langword="true"/>.</item>
/// </list>
/// <para>A refusal closes the connection with <see cref="SmtpErrorCode.BadCertificateName"/> when the name was the only
/// error, <see cref="SmtpErrorCode.BadCertificate"/> otherwise; other handshake failures give
/// <see cref="SmtpErrorCode.TlsHandshakeFailed"/>.</para>
/// </remarks>
public sealed class SmtpTlsOptions
{
    /// <summary>The server-authentication extended key usage (RFC 5280 §4.2.1.12), required of a server certificate.</summary>
    internal const string ServerAuthenticationOid = "1.3.6.1.5.5.7.3.1";

    /// <summary>
    /// The name the certificate must carry, also sent as SNI (RFC 6066 §3; not sent for an IP address). Default
    /// <see langword="null"/>: <see cref="SslClientAuthenticationOptions.TargetHost"/> of
    /// <see cref="ClientAuthenticationOptions"/> when set, else the host given to <c>ConnectAsync</c>. A
    /// <c>serverHostName</c> argument of <c>ConnectTlsAsync</c> overrides all of them.
    /// </summary>
    public string? TargetHost { get; set; }

    /// <summary>
    /// Whether a certificate that is valid in every way except that it does not name <see cref="TargetHost"/> is
    /// accepted (the seed's "ignore BAD_CERTIFICATE_NAME_ERROR"). Default <see langword="false"/>: such a certificate
    /// fails the handshake with <see cref="SmtpErrorCode.BadCertificateName"/>. When accepted, the session goes on and
    /// <see cref="AsyncSmtpSession.CertificateNameMismatch"/> is <see langword="true"/>. Decided before the handshake;
    /// ignored when <see cref="ClientAuthenticationOptions"/> has its own validation callback.
    /// </summary>
    public bool AcceptCertificateNameMismatch { get; set; }

    /// <summary>
    /// Extra root certificates trusted in addition to the system's (a private CA, a test server's self-signed
    /// certificate; the CLI's <c>--ca-file</c>). Empty by default. Add with
    /// <see cref="X509Certificate2Collection.Add(X509Certificate2)"/> or <see cref="AddTrustedRootCertificatesFromPemFile"/>.
    /// </summary>
    public X509Certificate2Collection TrustedRootCertificates { get; private set; } = new();

    /// <summary>
    /// The caller's TLS settings (the seed's <c>ConnectTlsOpenSSL</c>): <see cref="SslClientAuthenticationOptions.ClientCertificates"/>,
    /// <see cref="SslClientAuthenticationOptions.EnabledSslProtocols"/>, <see cref="SslClientAuthenticationOptions.CipherSuitesPolicy"/>,
    /// <see cref="SslClientAuthenticationOptions.CertificateRevocationCheckMode"/>, <see cref="SslClientAuthenticationOptions.CertificateChainPolicy"/>,
    /// <see cref="SslClientAuthenticationOptions.RemoteCertificateValidationCallback"/> (decides alone, see the remarks), and the others.
    /// Default <see langword="null"/>: the platform's defaults. The object is never modified: each handshake copies its
    /// settings into a new one (all properties except the obsolete <c>EncryptionPolicy</c>), filling in the target host
    /// and MailPipe's validation callback.
    /// </summary>
    public SslClientAuthenticationOptions? ClientAuthenticationOptions { get; set; }

    /// <summary>How long the TLS handshake may take. Default 60 seconds; at most 4294967294 ms (≈ 49.7 days). <see cref="Timeout.InfiniteTimeSpan"/> disables it.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Adds every certificate of a PEM file (RFC 7468, <c>-----BEGIN CERTIFICATE-----</c> blocks) to <see cref="TrustedRootCertificates"/>.</summary>
    /// <param name="path">The PEM file, such as <c>/tmp/mailpipe-tls/cert.pem</c>.</param>
    /// <returns>The number of certificates added (at least 1).</returns>
    /// <exception cref="ArgumentException"><paramref name="path"/> is empty, or the file holds no certificate.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="System.Security.Cryptography.CryptographicException">A PEM block is not a valid certificate.</exception>
    public int AddTrustedRootCertificatesFromPemFile(string path)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        if (certificates.Count == 0)
        {
            throw new ArgumentException($"The file '{path}' holds no PEM certificate.", nameof(path));
        }

        TrustedRootCertificates.AddRange(certificates);
        return certificates.Count;
    }

    /// <summary>Checks every setting.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="HandshakeTimeout"/> is zero or negative (other than infinite) or longer than 4294967294 ms.</exception>
    /// <exception cref="ArgumentException"><see cref="TargetHost"/> is white space or holds CR, LF or NUL.</exception>
    internal void Validate()
    {
        if (HandshakeTimeout != Timeout.InfiniteTimeSpan && (HandshakeTimeout <= TimeSpan.Zero || HandshakeTimeout > SmtpSessionOptions.MaxTimeout))
        {
            throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), HandshakeTimeout, "A timeout must be positive and at most 49 days (4294967294 ms), or Timeout.InfiniteTimeSpan.");
        }

        if (TargetHost is not null)
        {
            ArgumentException.ThrowIfNullOrWhiteSpace(TargetHost, nameof(TargetHost));
            SmtpCommandWriter.ValidateArgument(TargetHost, nameof(TargetHost));
        }
    }

    /// <summary>A copy whose root collection is its own (the certificates themselves are shared).</summary>
    internal SmtpTlsOptions Clone()
    {
        var clone = (SmtpTlsOptions)MemberwiseClone();
        clone.TrustedRootCertificates = new X509Certificate2Collection(TrustedRootCertificates);
        return clone;
    }
}
