using MailPipe.Transport;
using Microsoft.Extensions.Logging;

namespace MailPipe.Transmission;

/// <summary>STARTTLS hygiene on the channel (RFC 3207 §4.2, §5): nothing buffered crosses into TLS; the parser starts afresh.</summary>
internal sealed partial class SmtpChannel
{
    /// <summary>
    /// Upgrades the open connection to TLS inside the current operation: refuses bytes the server sent before the
    /// handshake (response injection), runs <see cref="TlsHandshake"/> within <paramref name="handshakeTimeout"/>, and
    /// resets the reply parser.
    /// </summary>
    /// <param name="tls">The TLS settings for this handshake.</param>
    /// <param name="targetHost">The name the certificate must carry.</param>
    /// <param name="handshakeTimeout">The handshake's deadline (<see cref="SmtpTlsOptions.HandshakeTimeout"/>).</param>
    /// <param name="beforeGreeting">Implicit TLS: no greeting was read on this connection yet.</param>
    /// <returns>What was negotiated.</returns>
    /// <exception cref="SmtpProtocolException"><see cref="SmtpErrorCode.StartTlsResponseInjection"/>; the connection is broken.</exception>
    /// <exception cref="SmtpException">The certificate and handshake codes of <see cref="TlsHandshake.RunAsync"/>, or a timeout; the connection is broken.</exception>
    /// <exception cref="OperationCanceledException">The caller's token fired; the connection is broken.</exception>
    public async Task<TlsParameters> UpgradeToTlsAsync(SmtpTlsOptions tls, string targetHost, TimeSpan handshakeTimeout, bool beforeGreeting)
    {
        var connection = OpenConnection;
        var injected = _parser.HasPartialReply ? 1L : 0L;
        if (connection.Input.TryRead(out var buffered))
        {
            injected += buffered.Buffer.Length;
            connection.Input.AdvanceTo(buffered.Buffer.Start);
        }

        if (injected > 0)
        {
            throw Fail(
                new SmtpProtocolException(
                    SmtpErrorCode.StartTlsResponseInjection,
                    $"The server sent {injected} byte(s) after its reply to STARTTLS and before the TLS handshake (response injection, RFC 3207 §5); they were discarded and the connection was closed."),
                "starting TLS");
        }

        StartSendDeadline(handshakeTimeout);
        TlsParameters negotiated;
        try
        {
            negotiated = await TlsHandshake.RunAsync(connection, tls, targetHost, beforeGreeting, SendToken).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex, "negotiating TLS");
        }

        StopSendDeadline();
        _parser.Reset();
        if (_sessionLog.IsEnabled(LogLevel.Debug))
        {
            Log.TlsEstablished(_sessionLog, negotiated.Protocol.ToString(), negotiated.CipherSuite.ToString());
        }

        return negotiated;
    }
}
