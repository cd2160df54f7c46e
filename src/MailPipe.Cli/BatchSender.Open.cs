using System.Diagnostics;

namespace MailPipe.Cli;

/// <content>Opening the session step by step: connect, TLS, EHLO/HELO, AUTH, each a place where <c>--quit-after</c> may stop.</content>
internal sealed partial class BatchSender
{
    /// <summary>
    /// Connects, protects the connection, introduces the client and authenticates, step by step so that
    /// <c>--quit-after</c> can stop after any; returns why the connection is unusable, exit code 0 when
    /// <c>--quit-after</c> ended it, or <see langword="null"/> to go on.
    /// </summary>
    private async Task<(int ExitCode, string Reason)?> OpenAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        var stopped = (ExitCodes.Success, "--quit-after");
        try
        {
            var implicitTls = _tlsMode == SmtpTlsMode.Implicit;
            await session.ConnectAsync(_server.Host, _server.Port, waitForGreeting: !implicitTls && _quitAfter != QuitAfter.Connect, cancellationToken).ConfigureAwait(false);
            _steps.Add(new SessionStep("connect", null));
            if (_quitAfter == QuitAfter.Connect)
            {
                await session.DisconnectAsync().ConfigureAwait(false);
                return stopped;
            }

            if (implicitTls)
            {
                await session.ConnectTlsAsync(waitForGreeting: true, cancellationToken).ConfigureAwait(false);
                _tls = ConnectionSettings.Describe(session);
            }

            var greeting = session.Greeting!;
            _steps.Add(new SessionStep("banner", ReplyInfo.From(greeting)));
            if (!greeting.IsPositiveCompletion)
            {
                return (ExitCodes.ConnectionFailed, $"the server at {_server} refused the session: {ReplyInfo.From(greeting)}");
            }

            if (_quitAfter == QuitAfter.Banner)
            {
                return stopped;
            }

            // --tls-optional: once the first connection used TLS, a new one must too (one that no longer offers STARTTLS
            // could be a man in the middle stripping it, and the summary reports the first connection's TLS).
            var tlsMode = _tlsKept ? SmtpTlsMode.StartTlsRequired : _tlsMode;
            var option = _tlsKept ? "--tls-optional" : "--starttls";
            var name = _heloName ?? await session.GetDefaultClientDomainAsync(cancellationToken).ConfigureAwait(false);
            if (await GreetAsync(session, name, allowHelo: tlsMode is SmtpTlsMode.None or SmtpTlsMode.Implicit or SmtpTlsMode.StartTlsWhenAvailable, cancellationToken).ConfigureAwait(false) is { } refused)
            {
                return refused;
            }

            if (_quitAfter == QuitAfter.Ehlo)
            {
                return stopped;
            }

            if (tlsMode is SmtpTlsMode.StartTlsRequired or SmtpTlsMode.StartTlsWhenAvailable && session.Capabilities.SupportsStartTls)
            {
                var startTls = await session.StartTlsAsync(cancellationToken).ConfigureAwait(false);
                _steps.Add(new SessionStep("starttls", ReplyInfo.From(startTls)));
                _tls = ConnectionSettings.Describe(session);
                if (startTls.Code == 220)
                {
                    if (await GreetAsync(session, name, allowHelo: false, cancellationToken).ConfigureAwait(false) is { } refusedAfterTls)
                    {
                        return refusedAfterTls;
                    }
                }
                else if (tlsMode == SmtpTlsMode.StartTlsRequired || !session.IsConnected)
                {
                    await session.DisconnectAsync().ConfigureAwait(false); // no fallback to clear text: nothing more, not even QUIT
                    return (ExitCodes.ConnectionFailed, $"{option}: {_server} refused STARTTLS ({ReplyInfo.From(startTls)}){(_tlsKept ? " after the first connection used TLS" : string.Empty)}; nothing more was sent");
                }
            }
            else if (tlsMode == SmtpTlsMode.StartTlsRequired)
            {
                await session.DisconnectAsync().ConfigureAwait(false);
                return (ExitCodes.ConnectionFailed, _tlsKept
                    ? $"--tls-optional: the first connection to {_server} used TLS, this one's EHLO reply does not offer STARTTLS; nothing more was sent on it"
                    : $"--starttls: {_server} does not offer STARTTLS in its EHLO reply; nothing more was sent (--tls-optional sends without TLS then)");
            }

            if (_quitAfter == QuitAfter.Tls)
            {
                return stopped;
            }

            if (_auth is not null && await AuthenticateAsync(session, _auth, cancellationToken).ConfigureAwait(false) is { } authFailure)
            {
                return authFailure;
            }

            return _quitAfter == QuitAfter.Auth ? stopped : null;
        }
        catch (SmtpException ex)
        {
            _tls ??= session.IsEncrypted ? ConnectionSettings.Describe(session) : null;
            return (ExitCodes.ForError(ex.ErrorCode), Describe(_server, ex, _tlsMode));
        }
    }

    /// <summary>EHLO, and HELO when EHLO is not understood (RFC 5321 §3.2) and extensions are not needed; returns why the server refused, or <see langword="null"/>.</summary>
    private async Task<(int ExitCode, string Reason)?> GreetAsync(AsyncSmtpSession session, string name, bool allowHelo, CancellationToken cancellationToken)
    {
        var reply = await session.EhloAsync(name, cancellationToken).ConfigureAwait(false);
        _steps.Add(new SessionStep("ehlo", ReplyInfo.From(reply)));
        if (reply.Code is 500 or 502 && session.IsConnected && allowHelo)
        {
            reply = await session.HeloAsync(name, cancellationToken).ConfigureAwait(false);
            _steps.Add(new SessionStep("helo", ReplyInfo.From(reply)));
        }

        return reply.IsPositiveCompletion ? null : (ExitCodes.ConnectionFailed, $"the server at {_server} refused EHLO/HELO {name}: {ReplyInfo.From(reply)}");
    }

    private async Task<(int ExitCode, string Reason)?> AuthenticateAsync(AsyncSmtpSession session, AuthSettings auth, CancellationToken cancellationToken)
    {
        SmtpReply reply;
        try
        {
            reply = await auth.AuthenticateAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (InvalidOperationException ex)
        {
            // The clear-text policy, checked before anything is sent (the options' checks should have caught it).
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.AuthenticationFailed, $"authentication failed: {auth.Describe(session.LastAttemptedMechanism)}: {ex.Message}");
        }
        catch (ArgumentException ex)
        {
            await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
            return (ExitCodes.UsageOrInput, $"{auth.Describe(session.LastAttemptedMechanism)}: {ex.Message}");
        }

        _steps.Add(new SessionStep("auth", ReplyInfo.From(reply)));
        if (reply.Code == 235)
        {
            return null;
        }

        await QuietQuitAsync(session, cancellationToken).ConfigureAwait(false);
        return (reply.IsServiceClosing ? ExitCodes.ConnectionFailed : ExitCodes.AuthenticationFailed, $"authentication failed: {auth.Describe(session.LastAttemptedMechanism)}: {ReplyInfo.From(reply)}");
    }
}
