using MailPipe.Transport;

namespace MailPipe;

/// <summary>The commands of RFC 5321 §4.1.1 that need neither TLS nor AUTH.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>
    /// Whether the last <see cref="MailFromAsync"/> declared SMTPUTF8 (RFC 6531 §3.4), which decides how its transaction's
    /// <see cref="RcptToAsync"/> writes a non-ASCII mailbox; <see langword="null"/> before any, and after a raw command
    /// (<see cref="SendCommandAsync"/>, or <see cref="SendBytesAsync"/> outside message data), which may have been a MAIL
    /// of the caller's own.
    /// </summary>
    private bool? _mailDeclaredSmtpUtf8;

    /// <summary>Sends EHLO (RFC 5321 §4.1.1.1) and, on a 250 reply, stores the server's extensions in <see cref="Capabilities"/>. The seed's <c>Ehlo()</c>.</summary>
    /// <param name="domain">The client's fully qualified domain name or address literal (such as <c>[127.0.0.1]</c>).</param>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply: 250 with the extension list, or a negative reply (500/502 from a server without ESMTP: fall back to <see cref="HeloAsync"/>).</returns>
    /// <exception cref="ArgumentException"><paramref name="domain"/> is empty, holds CR, LF, NUL or white space, has a non-ASCII label with no A-label form, or is longer than 255 octets (nothing is written). A domain with non-ASCII labels goes as its A-labels (RFC 6531 §3.7.1: EHLO comes before SMTPUTF8 is known).</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout (<see cref="SmtpSessionOptions.ReceiveTimeout"/>).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> EhloAsync(string domain, CancellationToken cancellationToken = default)
    {
        SmtpHelloName.Validate(domain);
        var reply = await SimpleCommandAsync(EhloVerb, "EHLO", SmtpHelloName.ToArgument(domain), cancellationToken, opensSession: true).ConfigureAwait(false);
        Capabilities = SmtpCapabilities.FromEhloReply(reply);
        return reply;
    }

    /// <summary>
    /// The name this client gives in EHLO/HELO when the caller has none (RFC 5321 §4.1.1.1, §4.1.4): this machine's
    /// fully qualified domain name when it has one (a name with a dot that is not <c>localhost</c> or
    /// <c>localhost.*</c>), otherwise the address literal of the local end of this connection (§4.1.3):
    /// <c>[192.0.2.1]</c> or <c>[IPv6:2001:db8::1]</c>. A bare host name such as <c>vm</c> is never used: servers with
    /// <c>reject_non_fqdn_helo_hostname</c> and large providers refuse it.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the host name lookup (done once per process, at most 2 s).</param>
    /// <returns>The name; on a caller's stream that is not a socket and without a fully qualified name, <c>[127.0.0.1]</c>.</returns>
    /// <exception cref="InvalidOperationException">The session is not connected: the local address is only known after connect.</exception>
    /// <exception cref="ObjectDisposedException">The session was disposed.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<string> GetDefaultClientDomainAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_channel.IsDisposed, this);
        var connection = _channel.Connection ?? throw new InvalidOperationException("The default client domain is computed after connect: the session is not connected.");
        var localEndPoint = connection.LocalEndPoint;
        var fullyQualified = await LocalHostName.FullyQualifiedAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        return SmtpHelloName.ForClient(fullyQualified, localEndPoint);
    }

    /// <summary>Sends HELO (RFC 5321 §4.1.1.1), for servers without ESMTP; clears <see cref="Capabilities"/>. The seed's <c>Helo()</c>.</summary>
    /// <param name="domain">The client's fully qualified domain name or address literal.</param>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply (250 on success).</returns>
    /// <exception cref="ArgumentException"><paramref name="domain"/> is empty, holds CR, LF, NUL or white space, has a non-ASCII label with no A-label form, or is longer than 255 octets (nothing is written). A domain with non-ASCII labels goes as its A-labels (RFC 6531 §3.7.1: EHLO comes before SMTPUTF8 is known).</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> HeloAsync(string domain, CancellationToken cancellationToken = default)
    {
        SmtpHelloName.Validate(domain);
        var reply = await SimpleCommandAsync(HeloVerb, "HELO", SmtpHelloName.ToArgument(domain), cancellationToken, opensSession: true).ConfigureAwait(false);
        Capabilities = SmtpCapabilities.None;
        return reply;
    }

    /// <summary>Sends <c>MAIL FROM:&lt;reverse-path&gt; [parameters]</c>, starting a mail transaction (RFC 5321 §4.1.1.2). The seed's <c>MailFrom()</c>.</summary>
    /// <remarks>A transaction that a send left open (MAIL accepted, every recipient refused) is ended with RSET first; one opened by an earlier call of this method is not.</remarks>
    /// <param name="reversePath">The sender's mailbox, such as <c>jdoe@example.org</c> (angle brackets optional); empty for the null reverse-path <c>&lt;&gt;</c> of bounces.</param>
    /// <param name="parameters">MAIL parameters as they go on the line, such as <c>SIZE=1024 BODY=8BITMIME</c> (RFC 1870, RFC 6152, RFC 3461); <see langword="null"/> for none.</param>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply: 250 when the sender is accepted, or a negative reply.</returns>
    /// <exception cref="ArgumentException">An argument holds CR, LF or NUL, or the path holds angle brackets inside or is not a mailbox (RFC 5321 §4.1.2), or, without the <c>SMTPUTF8</c> parameter, the mailbox's local part is not ASCII, its domain has no A-label, or it is over 256 octets with A-labels (RFC 6531 §3.4, RFC 5321 §4.5.3.1.3); nothing was sent. Without <c>SMTPUTF8</c> an internationalised domain goes as its A-labels.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> MailFromAsync(string reversePath, string? parameters = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reversePath);
        SmtpCommandWriter.ValidateMailbox(reversePath, nameof(reversePath), forwardPath: false);
        SmtpCommandWriter.ValidateArgument(parameters, nameof(parameters));
        var smtpUtf8 = Protocol.MailParameters.HasKeyword(parameters, "SMTPUTF8");
        var path = SmtpAddressRules.PathForTransaction(reversePath, smtpUtf8, nameof(reversePath));
        SmtpReply reply;
        using (BeginOperation(cancellationToken))
        {
            // A transaction a send left open (every recipient refused) is not the caller's: RSET first, as before AUTH.
            if (_sender is { CallerOpenedTransaction: false } && await ResetOpenTransactionAsync("MAIL FROM").ConfigureAwait(false) is { } closing)
            {
                return closing;
            }

            _channel.WritePathCommand(MailPrefix, "MAIL FROM", path, parameters);
            _mailDeclaredSmtpUtf8 = smtpUtf8;
            reply = _channel.CloseIfServiceClosing(await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending MAIL").ConfigureAwait(false));
        }

        // The server may now hold a transaction that the envelope API does not know the end of: its next one starts with RSET.
        _resetBeforeNextMail = IsConnected;
        if (_sender is { } sender)
        {
            sender.CallerOpenedTransaction = true;
        }

        return reply;
    }

    /// <summary>Sends <c>RCPT TO:&lt;forward-path&gt; [parameters]</c>, adding one recipient (RFC 5321 §4.1.1.3). The seed's <c>RcptTo()</c>.</summary>
    /// <param name="forwardPath">The recipient's mailbox (angle brackets optional).</param>
    /// <param name="parameters">RCPT parameters, such as <c>NOTIFY=SUCCESS,FAILURE</c> (RFC 3461); <see langword="null"/> for none.</param>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply: 250/251 accepted, or a negative reply such as 550 (unknown user) or 450/452 (try later).</returns>
    /// <exception cref="ArgumentException"><paramref name="forwardPath"/> is empty or not a mailbox (RFC 5321 §4.1.2), or an argument holds CR, LF or NUL, or the transaction's <see cref="MailFromAsync"/> did not declare <c>SMTPUTF8</c> and the mailbox's local part is not ASCII, its domain has no A-label, or it is over 256 octets with A-labels (RFC 6531 §3.4, RFC 5321 §4.5.3.1.3); nothing was sent. In such a transaction an internationalised domain goes as its A-labels; after a MAIL sent with <see cref="SendCommandAsync"/> or <see cref="SendBytesAsync"/> the path goes as given.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> RcptToAsync(string forwardPath, string? parameters = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(forwardPath);
        SmtpCommandWriter.ValidateMailbox(forwardPath, nameof(forwardPath), forwardPath: true);
        SmtpCommandWriter.ValidateArgument(parameters, nameof(parameters));
        var path = _mailDeclaredSmtpUtf8 is false ? SmtpAddressRules.PathForTransaction(forwardPath, smtpUtf8: false, nameof(forwardPath)) : forwardPath;
        return await PathCommandAsync(RcptPrefix, "RCPT TO", path, parameters, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sends RSET, aborting the current mail transaction (RFC 5321 §4.1.1.5). The seed's <c>Rset()</c>.</summary>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply (250).</returns>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> RsetAsync(CancellationToken cancellationToken = default)
    {
        var reply = await SimpleCommandAsync(RsetVerb, "RSET", argument: null, cancellationToken).ConfigureAwait(false);
        _resetBeforeNextMail &= !reply.IsPositiveCompletion;
        return reply;
    }

    /// <summary>
    /// AUTH (RFC 4954 §4) and STARTTLS (RFC 3207 §4) are not allowed inside a mail transaction: one that may still be
    /// open (MAIL accepted and the transaction not ended, such as every recipient refused) is ended with RSET first.
    /// </summary>
    /// <returns>A 421 to the RSET (the session is then closed, and the caller returns it), else <see langword="null"/>.</returns>
    private async ValueTask<SmtpReply?> ResetOpenTransactionAsync(string before)
    {
        if (!_resetBeforeNextMail)
        {
            return null;
        }

        _channel.WriteCommand(RsetVerb, "RSET");
        var reply = await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending RSET before " + before).ConfigureAwait(false);
        _resetBeforeNextMail = reply.IsServiceClosing;
        return reply.IsServiceClosing ? _channel.CloseIfServiceClosing(reply) : null;
    }

    /// <summary>Sends NOOP (RFC 5321 §4.1.1.9), for example to keep an idle connection alive. The seed's <c>Noop()</c>.</summary>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply (250).</returns>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<SmtpReply> NoopAsync(CancellationToken cancellationToken = default) => SimpleCommandAsync(NoopVerb, "NOOP", argument: null, cancellationToken);

    /// <summary>Sends <c>VRFY string</c> (RFC 5321 §4.1.1.6, §3.5). The seed's <c>Vrfy()</c>.</summary>
    /// <param name="address">The user name or mailbox to verify.</param>
    /// <param name="cancellationToken">Cancels the command; the connection is then closed.</param>
    /// <returns>The reply: 250/251 verified, 252 cannot verify but will accept, 550/551/553 not valid, 502 not implemented.</returns>
    /// <exception cref="ArgumentException"><paramref name="address"/> is empty or holds CR, LF or NUL.</exception>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> VrfyAsync(string address, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        SmtpCommandWriter.ValidateArgument(address, nameof(address));
        return await SimpleCommandAsync(VrfyVerb, "VRFY", address, cancellationToken, maskArgument: true).ConfigureAwait(false);
    }

    /// <summary>Sends QUIT (RFC 5321 §4.1.1.10), reads the reply and closes the connection (whatever the reply). The seed's <c>Quit()</c> followed by <c>Disconnect()</c>.</summary>
    /// <param name="cancellationToken">Cancels the command; the connection is closed either way.</param>
    /// <returns>The reply (221).</returns>
    /// <exception cref="InvalidOperationException">Not connected, sending message data, or another operation is running.</exception>
    /// <exception cref="SmtpException">Transport failure, protocol violation or timeout; a server that closes the connection without a reply to QUIT gives <see cref="SmtpErrorCode.ConnectionClosed"/> (nothing is lost: every message before QUIT has its final reply already). <see cref="SmtpSender"/> ignores this.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async Task<SmtpReply> QuitAsync(CancellationToken cancellationToken = default)
    {
        using var operation = BeginOperation(cancellationToken);
        try
        {
            _channel.WriteCommand("QUIT"u8, "QUIT");
            var reply = await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending QUIT").ConfigureAwait(false);
            await DisconnectAsync().ConfigureAwait(false);
            return reply;
        }
        catch (SmtpException ex) when (ex.ErrorCode == SmtpErrorCode.ServiceNotAvailable && ex.Reply is { } closing)
        {
            // The server had already said it is closing the channel (an idle 421, a 221) before QUIT went out: what
            // QUIT asks for is done, so its reply is the server's (RFC 5321 §3.8); the connection is closed.
            return closing;
        }
    }

    private static readonly byte[] EhloVerb = "EHLO"u8.ToArray();
    private static readonly byte[] HeloVerb = "HELO"u8.ToArray();
    private static readonly byte[] VrfyVerb = "VRFY"u8.ToArray();
    private static readonly byte[] MailPrefix = "MAIL FROM:"u8.ToArray();
    private static readonly byte[] RcptPrefix = "RCPT TO:"u8.ToArray();
    private static readonly byte[] NoopVerb = "NOOP"u8.ToArray();
    private static readonly byte[] RsetVerb = "RSET"u8.ToArray();

    /// <summary>One command and its reply in one operation; a 421 breaks the connection (to EHLO or HELO, <paramref name="opensSession"/>, with the connection's span failed as by a 421 greeting).</summary>
    private async Task<SmtpReply> SimpleCommandAsync(byte[] verb, string name, string? argument, CancellationToken cancellationToken, bool maskArgument = false, bool opensSession = false)
    {
        using var operation = BeginOperation(cancellationToken);
        if (argument is null)
        {
            _channel.WriteCommand(verb, name);
        }
        else
        {
            _channel.WriteCommand(verb, name, argument, maskArgument);
        }

        var reply = await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending " + name).ConfigureAwait(false);
        return opensSession ? CloseIfSessionRefused(reply) : _channel.CloseIfServiceClosing(reply);
    }

    /// <summary>
    /// The reply to a command that opens the session (EHLO, HELO, STARTTLS, AUTH): a 421 there refuses the session, so the
    /// connection failed to open and its span says so (error.type = 421) before the 421 closes it. The close alone would
    /// end the span without error.type, and the pool's ConnectionEnded would then find none.
    /// </summary>
    private SmtpReply CloseIfSessionRefused(SmtpReply reply)
    {
        if (reply.IsServiceClosing)
        {
            SessionTelemetry.ConnectionEnded(this, reply.Code.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        return _channel.CloseIfServiceClosing(reply);
    }

    /// <summary>MAIL or RCPT with a checked path and parameters in one operation.</summary>
    private async Task<SmtpReply> PathCommandAsync(byte[] prefix, string name, string path, string? parameters, CancellationToken cancellationToken)
    {
        using var operation = BeginOperation(cancellationToken);
        _channel.WritePathCommand(prefix, name, path, parameters);
        return _channel.CloseIfServiceClosing(await _channel.FlushAndReadAsync(_options.ReceiveTimeout, "sending " + name[..4]).ConfigureAwait(false));
    }
}
