namespace MailPipe.Transmission;

/// <summary>
/// The caller's close (<see cref="Abort"/>: <c>DisconnectAsync</c> or <c>Dispose</c> from another thread) while a
/// connect operation has no connection yet: the TCP connect is cancelled, and a connection that arrives anyway is closed
/// as soon as it is attached, so that the close is never lost (a session connected although its caller closed it).
/// </summary>
internal sealed partial class SmtpChannel
{
    /// <summary>1 once <see cref="Abort"/> found no connection open during the current connect operation (reset as one starts).</summary>
    private int _abortedWhileConnecting;

    /// <summary>The token source of the TCP connect under way (the send deadline's and the caller's token, and <see cref="Abort"/>), or <see langword="null"/>.</summary>
    private CancellationTokenSource? _connecting;

    /// <summary>A connect operation starts (on its flow, before anything is opened): a close made before it does not concern it.</summary>
    private void ForgetAbortWhileDisconnected() => Volatile.Write(ref _abortedWhileConnecting, 0);

    /// <summary>The token source of a TCP connect, linked to the send deadline, published for <see cref="Abort"/>; cancelled at once when the caller has already closed.</summary>
    private CancellationTokenSource StartConnecting()
    {
        var connecting = CancellationTokenSource.CreateLinkedTokenSource(_sendCts.Token);
        Volatile.Write(ref _connecting, connecting);
        if (Volatile.Read(ref _abortedWhileConnecting) != 0)
        {
            connecting.Cancel();
        }

        return connecting;
    }

    /// <summary>The TCP connect has ended (before its token source is disposed).</summary>
    private void EndConnecting() => Volatile.Write(ref _connecting, null);

    /// <summary>From <see cref="Abort"/> with no connection open: a connect under way ends as closed by the caller.</summary>
    private void AbortConnecting()
    {
        Volatile.Write(ref _abortedWhileConnecting, 1);
        if (Volatile.Read(ref _connecting) is { } connecting)
        {
            try
            {
                // The socket's cancellation runs on the thread pool, never inside the caller's close.
                _ = connecting.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // The connect has just ended: the connection it made is closed when it is attached (CloseIfClosedWhileConnecting).
            }
        }
    }

    /// <summary>What a failed connect throws when the caller closed the session meanwhile (and neither its token nor the deadline fired): <see cref="SmtpErrorCode.ConnectionClosed"/>.</summary>
    private SmtpException? ClosedWhileConnecting(Exception exception, string activity) =>
        Volatile.Read(ref _abortedWhileConnecting) != 0 && !_callerToken.IsCancellationRequested && !_sendCts.IsCancellationRequested
            ? new SmtpException(SmtpErrorCode.ConnectionClosed, $"The connection was closed by the caller (DisconnectAsync or Dispose) while {activity}.", exception)
            : null;

    /// <summary>Just after a connection was attached: if the caller closed the session meanwhile, it is closed now (the operation then fails as closed).</summary>
    private void CloseIfClosedWhileConnecting()
    {
        if (Volatile.Read(ref _abortedWhileConnecting) != 0)
        {
            Abort();
        }
    }
}
