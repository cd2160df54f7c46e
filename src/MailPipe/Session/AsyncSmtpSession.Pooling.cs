namespace MailPipe;

/// <summary>What the shared sender (<c>Pooling/</c>) needs to know of an idle session, without a round trip.</summary>
public sealed partial class AsyncSmtpSession
{
    /// <summary>Checks an envelope as <c>SendAsync</c> does, before the sender queues it.</summary>
    /// <exception cref="ArgumentException">A parameter holds CR, LF or NUL.</exception>
    internal static void ValidateEnvelope(SmtpEnvelope envelope) => Validate(envelope);

    /// <summary>
    /// Whether an idle session is unfit to lend: disconnected, replies pending, or something arrived that nobody asked
    /// for (an unsolicited reply such as 421 after an idle timeout, or the end of the stream).
    /// </summary>
    internal bool IsStaleWhileIdle =>
        _channel.Connection is not { } connection
        || State != SmtpSessionState.Connected
        || PendingReplyCount != 0
        || connection.HasUnsolicitedInput();

    /// <summary>
    /// Whether, with no reply due (between the transactions of a pooled batch), the server closed the connection or
    /// said something nobody asked for (a 421 before it closes): a transaction written now would go into a connection the
    /// server has left, and with PIPELINING and CHUNKING its end of data with it. False while replies are due, and
    /// whenever the input cannot be looked at now.
    /// </summary>
    internal bool ServerLeftWhileNothingDue
    {
        get
        {
            if (_channel.Connection is not { } connection || PendingReplyCount != 0)
            {
                return false;
            }

            try
            {
                return connection.HasUnsolicitedInput();
            }
            catch (InvalidOperationException)
            {
                return false; // a read of the input is under way: only that read tells
            }
        }
    }
}
