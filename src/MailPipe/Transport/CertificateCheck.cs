using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Transport;

/// <summary>One handshake's certificate decision (see <see cref="SmtpTlsOptions"/>) and what it saw.</summary>
internal sealed class CertificateCheck(SmtpTlsOptions tls, string targetHost)
{
    private readonly SslClientAuthenticationOptions? _callerOptions = tls.ClientAuthenticationOptions;
    private readonly X509Certificate2Collection _extraRoots = new(tls.TrustedRootCertificates);
    private readonly bool _acceptNameMismatch = tls.AcceptCertificateNameMismatch;

    public string TargetHost { get; } = targetHost;

    public X509Certificate2? Certificate { get; private set; }

    public SslPolicyErrors Errors { get; private set; }

    public bool Rejected { get; private set; }

    /// <summary>A fresh options object: the caller's settings copied, the target host and this check's callback filled in.</summary>
    public SslClientAuthenticationOptions CreateClientOptions()
    {
        var caller = _callerOptions;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = TargetHost,
            RemoteCertificateValidationCallback = Validate,
        };
        if (caller is not null)
        {
            options.AllowRenegotiation = caller.AllowRenegotiation;
            options.AllowTlsResume = caller.AllowTlsResume;
            options.ApplicationProtocols = caller.ApplicationProtocols;
            options.CertificateChainPolicy = caller.CertificateChainPolicy;
            options.CertificateRevocationCheckMode = caller.CertificateRevocationCheckMode;
            options.CipherSuitesPolicy = caller.CipherSuitesPolicy;
            options.ClientCertificateContext = caller.ClientCertificateContext;
            options.ClientCertificates = caller.ClientCertificates;
            options.EnabledSslProtocols = caller.EnabledSslProtocols;
            options.LocalCertificateSelectionCallback = caller.LocalCertificateSelectionCallback;
            if (OperatingSystem.IsLinux() || OperatingSystem.IsWindows())
            {
                options.AllowRsaPkcs1Padding = caller.AllowRsaPkcs1Padding;
                options.AllowRsaPssPadding = caller.AllowRsaPssPadding;
            }
        }

        return options;
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        var certificate2 = certificate is null ? null : new X509Certificate2(certificate);
        Certificate = certificate2;
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0 && _extraRoots.Count > 0 && certificate2 is not null
            && ChainsToExtraRoot(certificate2, chain))
        {
            errors &= ~SslPolicyErrors.RemoteCertificateChainErrors;
        }

        Errors = errors;
        var callback = _callerOptions?.RemoteCertificateValidationCallback;
        var accepted = callback is not null
            ? callback(sender, certificate, chain, errors)
            : errors == SslPolicyErrors.None || (errors == SslPolicyErrors.RemoteCertificateNameMismatch && _acceptNameMismatch);
        Rejected = !accepted;
        return accepted;
    }

    /// <summary>Builds the chain again with the extra roots as the only trust anchors (CustomRootTrust).</summary>
    private bool ChainsToExtraRoot(X509Certificate2 certificate, X509Chain? platformChain)
    {
        var policy = _callerOptions?.CertificateChainPolicy?.Clone() ?? new X509ChainPolicy
        {
            RevocationMode = _callerOptions?.CertificateRevocationCheckMode ?? X509RevocationMode.NoCheck,
        };
        policy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        policy.CustomTrustStore.AddRange(_extraRoots);
        if (policy.ApplicationPolicy.Count == 0)
        {
            policy.ApplicationPolicy.Add(new Oid(SmtpTlsOptions.ServerAuthenticationOid));
        }

        if (platformChain is not null)
        {
            policy.ExtraStore.AddRange(platformChain.ChainPolicy.ExtraStore);
            foreach (var element in platformChain.ChainElements)
            {
                policy.ExtraStore.Add(element.Certificate);
            }
        }

        using var chain = new X509Chain { ChainPolicy = policy };
        return chain.Build(certificate);
    }
}
