namespace MailPipe;

/// <summary>Where an <see cref="AsyncSmtpSession"/> stands.</summary>
public enum SmtpSessionState
{
    /// <summary>No connection: before <c>ConnectAsync</c>, after QUIT or <c>DisconnectAsync</c>, and after any failure, timeout or cancellation.</summary>
    Disconnected,

    /// <summary>Connected; commands may be sent.</summary>
    Connected,

    /// <summary>DATA got 354: only message data may be sent, ended by <c>EndMessageDataAsync</c> (RFC 5321 §4.1.1.4).</summary>
    SendingData,
}
