using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;

namespace MailPipe.Transport;

/// <summary>
/// The TLS client handshake on an open connection (implicit TLS, RFC 8314 §3.3; after STARTTLS, RFC 3207 §4): the
/// <see cref="SslClientAuthenticationOptions"/> built from <see cref="SmtpTlsOptions"/> (client certificates,
/// protocols, cipher policy, the caller's callback), the certificate decision of <see cref="CertificateCheck"/>, what
/// a failed handshake means, and what was negotiated.
/// </summary>
internal static class TlsHandshake
{
    /// <summary>The name the certificate must carry (also sent as SNI, RFC 6066 §3).</summary>
    /// <param name="tls">The TLS settings.</param>
    /// <param name="serverHostName">The name the caller passed for this handshake, or <see langword="null"/>.</param>
    /// <param name="host">The host the session connected to, or <see langword="null"/> for a caller's stream.</param>
    /// <returns>The first of <paramref name="serverHostName"/>, <see cref="SmtpTlsOptions.TargetHost"/>, the caller's <see cref="SslClientAuthenticationOptions.TargetHost"/> and <paramref name="host"/>.</returns>
    /// <exception cref="InvalidOperationException">None is known (a stream connection without a target host).</exception>
    public static string TargetHost(SmtpTlsOptions tls, string? serverHostName, string? host) =>
        serverHostName ?? tls.TargetHost ?? tls.ClientAuthenticationOptions?.TargetHost ?? host
        ?? throw new InvalidOperationException("No server name to check the certificate against: the session was connected over a stream; set SmtpTlsOptions.TargetHost or pass serverHostName.");

    /// <summary>Runs the handshake; on success the connection's pipes are the TLS ones.</summary>
    /// <param name="connection">The connection, with nothing buffered from the server.</param>
    /// <param name="tls">The TLS settings for this handshake.</param>
    /// <param name="targetHost">The name the certificate must carry.</param>
    /// <param name="beforeGreeting">Whether this is implicit TLS (RFC 8314 §3.3), before any reply: plain text instead of TLS then means a port that greets in plain text.</param>
    /// <param name="cancellationToken">The operation's token (the caller's token and the handshake deadline).</param>
    /// <returns>What was negotiated.</returns>
    /// <exception cref="SmtpException"><see cref="SmtpErrorCode.BadCertificateName"/>, <see cref="SmtpErrorCode.BadCertificate"/> or <see cref="SmtpErrorCode.TlsHandshakeFailed"/>. Once <paramref name="cancellationToken"/> fired, the handshake's own exception instead, for the caller's failure funnel to tell a timeout from a cancellation.</exception>
    public static async Task<TlsParameters> RunAsync(SmtpConnection connection, SmtpTlsOptions tls, string targetHost, bool beforeGreeting, CancellationToken cancellationToken)
    {
        var check = new CertificateCheck(tls, targetHost);
        try
        {
            await connection.UpgradeToTlsAsync(check.CreateClientOptions(), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not SmtpException && !cancellationToken.IsCancellationRequested)
        {
            throw Describe(ex, check, connection.HandshakePlainTextReply, beforeGreeting);
        }

        var stream = connection.TlsStream!;
        return new TlsParameters(stream.SslProtocol, stream.NegotiatedCipherSuite, check.Certificate, check.Errors);
    }

    private static SmtpException Describe(Exception exception, CertificateCheck check, string? plainText, bool beforeGreeting)
    {
        if (plainText is not null && !check.Rejected)
        {
            // .NET says "Cannot determine the frame size or a corrupted frame was received": say what came instead.
            var advice = beforeGreeting
                ? " A port that greets in plain text first (as 25 and 587 do) starts TLS with STARTTLS: use SmtpTlsMode.StartTlsRequired there, not implicit TLS."
                : string.Empty;
            return new SmtpException(
                SmtpErrorCode.TlsHandshakeFailed,
                $"The TLS handshake with '{check.TargetHost}' failed: the server answered in plain text, not TLS (\"{plainText}\").{advice}",
                exception);
        }

        if (check.Rejected && check.Errors == SslPolicyErrors.RemoteCertificateNameMismatch)
        {
            return new SmtpException(
                SmtpErrorCode.BadCertificateName,
                $"The server's certificate ({check.Certificate?.Subject}) does not name '{check.TargetHost}'; the connection was closed. Set SmtpTlsOptions.AcceptCertificateNameMismatch (configuration key Tls:AcceptCertificateNameMismatch) to accept it.",
                exception);
        }

        return check.Rejected
            ? new SmtpException(
                SmtpErrorCode.BadCertificate,
                $"The server's certificate ({check.Certificate?.Subject ?? "none"}) was rejected ({check.Errors}); the connection was closed. Trust its root with SmtpTlsOptions.TrustedRootCertificates (configuration key Tls:CaFile) if it is a private CA.",
                exception)
            : new SmtpException(SmtpErrorCode.TlsHandshakeFailed, $"The TLS handshake with '{check.TargetHost}' failed: {TransportErrors.Reason(exception)}", exception);
    }
}

/// <summary>What a TLS handshake negotiated and what was wrong with the certificate although it was accepted.</summary>
/// <param name="Protocol">The TLS version.</param>
/// <param name="CipherSuite">The cipher suite.</param>
/// <param name="RemoteCertificate">The server's certificate (a copy), or <see langword="null"/>.</param>
/// <param name="Errors">The accepted errors (<see cref="SslPolicyErrors.None"/> for a fully valid certificate).</param>
internal sealed record TlsParameters(SslProtocols Protocol, TlsCipherSuite CipherSuite, X509Certificate2? RemoteCertificate, SslPolicyErrors Errors);
