using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Cli;

/// <summary>The certificate of <c>mailpipe serve --starttls</c>: generated in memory, or loaded from PEM files.</summary>
internal static class ServerCertificate
{
    /// <summary>
    /// Generates a self-signed certificate (ECDSA P-256, valid from an hour ago for 30 days) for <c>localhost</c>,
    /// 127.0.0.1, ::1 and <paramref name="hostName"/>. Its private key lives in memory only.
    /// </summary>
    /// <param name="hostName">A further name or address literal to put in the certificate, or <see langword="null"/>.</param>
    /// <returns>The certificate with its private key.</returns>
    public static X509Certificate2 Generate(string? hostName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost, O=mailpipe serve", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        if (!string.IsNullOrEmpty(hostName) && hostName != "localhost")
        {
            if (IPAddress.TryParse(hostName, out var literal))
            {
                if (!literal.Equals(IPAddress.Loopback) && !literal.Equals(IPAddress.IPv6Loopback) && !literal.Equals(IPAddress.Any) && !literal.Equals(IPAddress.IPv6Any))
                {
                    names.AddIpAddress(literal);
                }
            }
            else
            {
                names.AddDnsName(hostName);
            }
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var created = request.CreateSelfSigned(now.AddHours(-1), now.AddDays(30));

        // Through PKCS#12 so that every platform's TLS stack takes the key (an ephemeral key is not usable everywhere).
        return X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), password: null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>Loads a certificate and its private key from PEM files.</summary>
    /// <param name="certificatePath">The certificate (PEM; a chain may follow it).</param>
    /// <param name="keyPath">The private key (PEM, unencrypted), or <see langword="null"/> when the certificate file holds it too.</param>
    /// <returns>The certificate with its private key.</returns>
    /// <exception cref="IOException">A file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">A file cannot be read.</exception>
    /// <exception cref="CryptographicException">The PEM holds no certificate or no matching private key.</exception>
    public static X509Certificate2 Load(string certificatePath, string? keyPath)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        if (!pem.HasPrivateKey)
        {
            throw new CryptographicException("the certificate has no private key");
        }

        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null, X509KeyStorageFlags.Exportable);
    }

    /// <summary>
    /// Why a certificate and key could not be loaded, when the cause is an encrypted private key (PEM
    /// <c>ENCRYPTED PRIVATE KEY</c>, or a traditional key with <c>Proc-Type: 4,ENCRYPTED</c>): .NET only says that the
    /// key "does not contain a PEM, the content is malformed, or the key does not match the certificate".
    /// </summary>
    /// <param name="certificatePath">The <c>--tls-cert</c> file.</param>
    /// <param name="keyPath">The <c>--tls-key</c> file, or <see langword="null"/> for the key in the certificate file.</param>
    /// <returns>The error text, naming the option and the file, or <see langword="null"/> when the key is not encrypted (or cannot be read).</returns>
    public static string? EncryptedKeyError(string certificatePath, string? keyPath)
    {
        var path = keyPath ?? certificatePath;
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return text.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal) || text.Contains("Proc-Type: 4,ENCRYPTED", StringComparison.Ordinal)
            ? $"{(keyPath is null ? "--tls-cert" : "--tls-key")} {path}: the private key is encrypted (protected by a passphrase); mailpipe takes it unencrypted: openssl pkey -in {path} -out key.pem"
            : null;
    }

    /// <summary>The certificate in PEM, without its key: what a client needs to trust it.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>The PEM text.</returns>
    public static string ToPem(X509Certificate2 certificate) => certificate.ExportCertificatePem() + "\n";
}
