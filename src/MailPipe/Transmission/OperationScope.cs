namespace MailPipe.Transmission;

/// <summary>
/// One public operation of a session, from its guard to its end (Npgsql's <c>UserAction</c>): made by
/// <see cref="SmtpChannel.StartOperation"/> once the guard is taken, the state checked and the caller's token linked
/// to the deadlines; disposing it ends the operation (<see cref="SmtpChannel.EndOperation"/>). Allocates nothing.
/// </summary>
internal readonly struct OperationScope : IDisposable
{
    private readonly SmtpChannel? _channel;

    /// <summary>The scope of an operation the channel has started.</summary>
    /// <param name="channel">The channel.</param>
    internal OperationScope(SmtpChannel channel) => _channel = channel;

    /// <summary>Ends the operation (once per scope made by <see cref="SmtpChannel.StartOperation"/>; a default scope does nothing).</summary>
    public void Dispose() => _channel?.EndOperation();
}
