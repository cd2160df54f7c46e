namespace MailPipe;

/// <summary>
/// The timeouts of each pooled connection. <see cref="Interactive"/> (the default of <see cref="SmtpSenderOptions"/>)
/// suits a web request; <see cref="Rfc5321"/> has the MTA values of RFC 5321 §4.5.3.2, which can hold a request and a
/// pooled connection for minutes. Every value is positive and at most 4294967294 ms (≈ 49.7 days, a timer's limit), or
/// <see cref="Timeout.InfiniteTimeSpan"/>; the sender's constructor refuses others, naming the setting (<c>Timeouts.Reply</c>).
/// </summary>
public sealed record SmtpTimeouts
{
    /// <summary>Timeouts for a request path: connect 10 s, send 30 s, replies 30 s, end of data 60 s.</summary>
    public static SmtpTimeouts Interactive { get; } = new()
    {
        Connect = TimeSpan.FromSeconds(10),
        Send = TimeSpan.FromSeconds(30),
        Reply = TimeSpan.FromSeconds(30),
        DataTermination = TimeSpan.FromSeconds(60),
    };

    /// <summary>RFC 5321 §4.5.3.2: connect 60 s (not in the RFC), send 3 min (data block), replies 5 min (greeting, MAIL, RCPT), end of data 10 min.</summary>
    public static SmtpTimeouts Rfc5321 { get; } = new()
    {
        Connect = TimeSpan.FromSeconds(60),
        Send = TimeSpan.FromMinutes(3),
        Reply = TimeSpan.FromMinutes(5),
        DataTermination = TimeSpan.FromMinutes(10),
    };

    /// <summary>How long a TCP connect may take (<see cref="SmtpSessionOptions.ConnectTimeout"/>).</summary>
    public TimeSpan Connect { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one flush of commands or of a block of message data may take (<see cref="SmtpSessionOptions.SendTimeout"/>).</summary>
    public TimeSpan Send { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the client waits for a reply: greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, NOOP, QUIT (<see cref="SmtpSessionOptions.ReceiveTimeout"/>).</summary>
    public TimeSpan Reply { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the client waits for the reply to the end of message data (<see cref="SmtpSessionOptions.DataTerminationTimeout"/>).</summary>
    public TimeSpan DataTermination { get; init; } = TimeSpan.FromSeconds(60);
}
