namespace MailPipe;

/// <summary>
/// What a submission client does first, in one call (RFC 5321 §3.1-3.2, RFC 8314, RFC 3207): connect, protect the
/// connection as the <see cref="SmtpTlsMode"/> says, and send EHLO (again over TLS after STARTTLS, RFC 3207 §4.2).
/// A recipe over the session's public operations; <see cref="AsyncSmtpSession.ConnectAsync(string, int, SmtpTlsMode, string?, CancellationToken)"/> documents it.
/// </summary>
internal static class SubmissionStart
{
    /// <summary>Runs the sequence; see <see cref="AsyncSmtpSession.ConnectAsync(string, int, SmtpTlsMode, string?, CancellationToken)"/>.</summary>
    /// <param name="session">The session, disconnected.</param>
    /// <param name="host">A host name or IP literal.</param>
    /// <param name="port">The TCP port.</param>
    /// <param name="tlsMode">How to use TLS.</param>
    /// <param name="ehloDomain">The EHLO name, or <see langword="null"/> for the default computed after connect.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>The last EHLO reply, or the greeting when it was not positive.</returns>
    public static async Task<SmtpReply> RunAsync(AsyncSmtpSession session, string host, int port, SmtpTlsMode tlsMode, string? ehloDomain, CancellationToken cancellationToken)
    {
        if (ehloDomain is not null)
        {
            SmtpHelloName.Validate(ehloDomain);
        }

        if (!Enum.IsDefined(tlsMode))
        {
            throw new ArgumentOutOfRangeException(nameof(tlsMode), tlsMode, "Unknown TLS mode.");
        }

        SmtpReply greeting;
        if (tlsMode == SmtpTlsMode.Implicit)
        {
            await session.ConnectAsync(host, port, waitForGreeting: false, cancellationToken).ConfigureAwait(false);
            greeting = (await session.ConnectTlsAsync(waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
        }
        else
        {
            greeting = (await session.ConnectAsync(host, port, waitForGreeting: true, cancellationToken).ConfigureAwait(false))!;
        }

        if (!greeting.IsPositiveCompletion || !session.IsConnected)
        {
            return greeting;
        }

        if (SmtpGreetingRules.NotReady(greeting) is { } notReady)
        {
            throw session.FailBetweenOperations(notReady, "reading the greeting");
        }

        ehloDomain ??= await session.GetDefaultClientDomainAsync(cancellationToken).ConfigureAwait(false);
        var ehlo = await session.EhloAsync(ehloDomain, cancellationToken).ConfigureAwait(false);
        if (ehlo.Code is 500 or 502 && session.IsConnected && tlsMode != SmtpTlsMode.StartTlsRequired)
        {
            // A server that does not know EHLO gets HELO, and no extensions (RFC 5321 §3.2, §4.1.4). Not when TLS is
            // required: STARTTLS is an extension, so that refusal stands (below).
            return await session.HeloAsync(ehloDomain, cancellationToken).ConfigureAwait(false);
        }

        if (tlsMode is not (SmtpTlsMode.StartTlsRequired or SmtpTlsMode.StartTlsWhenAvailable) || ehlo.IsServiceClosing)
        {
            return ehlo;
        }

        var required = tlsMode == SmtpTlsMode.StartTlsRequired;
        if (!ehlo.IsPositiveCompletion || !session.Capabilities.SupportsStartTls)
        {
            if (!required)
            {
                return ehlo;
            }

            throw session.FailBetweenOperations(new SmtpException(
                SmtpErrorCode.StartTlsNotOffered,
                ehlo.IsPositiveCompletion
                    ? $"TLS is required but {Transport.SmtpEndpointText.Format(host, port)} does not offer STARTTLS in its EHLO reply; nothing more was sent and the connection was closed."
                    : $"TLS is required but {Transport.SmtpEndpointText.Format(host, port)} answered EHLO with {ehlo.Code}; nothing more was sent and the connection was closed."),
                "checking for STARTTLS");
        }

        var startTls = await session.StartTlsAsync(cancellationToken).ConfigureAwait(false);
        if (startTls.Code != 220)
        {
            if (!required || startTls.IsServiceClosing)
            {
                return startTls.IsServiceClosing ? startTls : ehlo;
            }

            throw session.FailBetweenOperations(
                new SmtpException(SmtpErrorCode.StartTlsNotOffered, $"TLS is required but {Transport.SmtpEndpointText.Format(host, port)} refused STARTTLS ({startTls}); the connection was closed."),
                "starting TLS");
        }

        return await session.EhloAsync(ehloDomain, cancellationToken).ConfigureAwait(false);
    }
}
