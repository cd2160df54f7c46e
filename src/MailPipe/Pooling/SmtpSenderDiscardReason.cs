namespace MailPipe;

/// <summary>Why the pool closed a connection: the values of the <c>mailpipe.sender.connection.discard_reason</c> tag of <c>mailpipe.sender.connection.discarded</c>.</summary>
public static class SmtpSenderDiscardReason
{
    /// <summary>The connection failed during a send (transport failure, protocol violation, timeout).</summary>
    public const string Broken = "broken";

    /// <summary>
    /// MailPipe closed the connection itself to end a mail transaction it could not finish, neither the network nor
    /// the server being at fault: with DATA, the content's source failed midway or held what the server cannot take
    /// (an 8-bit octet in a 7-bit transaction, more than its SIZE), or the caller cancelled while its content was
    /// written; or the caller cancelled a batch it was alone in. Closing is the only way to end DATA without the final
    /// dot, which would deliver a fragment.
    /// </summary>
    public const string TransactionAborted = "transaction_aborted";

    /// <summary>The server said 421 (service not available, closing the channel; RFC 5321 §3.8).</summary>
    public const string ServiceClosing = "service_closing";

    /// <summary>
    /// An idle connection had something waiting that nobody asked for (an unsolicited reply, or the end of the stream);
    /// or the same was seen on a connection still in its batch, with no reply due, before another message joined it
    /// (the server closed the connection, or said something nobody asked for such as a 421): it takes no more messages
    /// and is closed when its batch ends, the waiting messages going to another connection.
    /// </summary>
    public const string Stale = "stale";

    /// <summary>An idle connection did not answer NOOP with 250 before being lent.</summary>
    public const string NoopFailed = "noop_failed";

    /// <summary>The connection was idle for longer than <see cref="SmtpSenderOptions.IdleTimeout"/>.</summary>
    public const string IdleTimeout = "idle_timeout";

    /// <summary>The connection lived longer than <see cref="SmtpSenderOptions.MaxLifetime"/>.</summary>
    public const string Lifetime = "lifetime";

    /// <summary>The connection sent <see cref="SmtpSenderOptions.MaxMessagesPerConnection"/> messages.</summary>
    public const string MaxMessages = "max_messages";

    /// <summary>The connection came near <see cref="SmtpSenderOptions.MaxNonMailCommandsPerConnection"/> (Exim's "554 Too many nonmail commands").</summary>
    public const string NonMailLimit = "nonmail_limit";

    /// <summary>The sender was disposed.</summary>
    public const string Disposed = "disposed";
}
