namespace MailPipe.Resilience;

/// <summary>
/// One message's token for the pipeline (<see cref="ResilientSmtpSender.SendAsync"/>): the caller's token, and the
/// wrapper's disposal, which ends the message's retry delays at once but never cancels an attempt in flight. That
/// attempt is the inner sender's business: its own disposal lets it finish (up to
/// <see cref="SmtpSenderOptions.DisposeTimeout"/> for <see cref="SmtpSender"/>), and its caller must learn its true
/// result; cancelling it would make an accepted message <see cref="SmtpSendOutcome.Unknown"/>. The token is cancelled
/// for the disposal when the attempt ends, before the pipeline could wait for the next one.
/// </summary>
internal sealed class AttemptShield : IDisposable
{
    private readonly CancellationTokenSource _token;
    private readonly CancellationTokenRegistration _onDisposal;
    private readonly Lock _lock = new();
    private bool _inAttempt;
    private bool _disposalRequested;

    /// <summary>Watches <paramref name="disposal"/> for this message.</summary>
    /// <param name="callerToken">The caller's token, linked.</param>
    /// <param name="disposal">The wrapper's disposal token.</param>
    public AttemptShield(CancellationToken callerToken, CancellationToken disposal)
    {
        _token = callerToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(callerToken) : new CancellationTokenSource();
        _onDisposal = disposal.UnsafeRegister(static s => ((AttemptShield)s!).OnDisposal(), this);
    }

    /// <summary>The pipeline's token: the caller's, and the disposal outside attempts.</summary>
    public CancellationToken Token => _token.Token;

    /// <summary>One attempt on the inner sender, shielded from the disposal (not from the caller's token or a timeout, which come with <paramref name="cancellationToken"/>).</summary>
    public async Task<SmtpSendResult> AttemptAsync(ISmtpSender inner, SmtpMessage message, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            _inAttempt = true;
        }

        try
        {
            return await inner.SendAsync(message, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            bool end;
            lock (_lock)
            {
                _inAttempt = false;
                end = _disposalRequested;
            }

            if (end)
            {
                // Disposed during the attempt: no retry delay may start after it.
                _token.Cancel();
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // The registration first: it waits for a running OnDisposal, which then never finds the source disposed.
        _onDisposal.Dispose();
        _token.Dispose();
    }

    private void OnDisposal()
    {
        bool end;
        lock (_lock)
        {
            _disposalRequested = true;
            end = !_inAttempt;
        }

        if (end)
        {
            // Waiting for a retry (or not yet started): that wait ends now. Otherwise when the attempt ends (above).
            _token.Cancel();
        }
    }
}
