using System.Diagnostics;

namespace MailPipe.Cli;

/// <summary>Where <c>--quit-after</c> ends the session: after that step, QUIT is sent (swaks' <c>--quit-after</c>).</summary>
internal enum QuitAfter
{
    /// <summary>Send the messages.</summary>
    None,

    /// <summary>After the TCP connection (and implicit TLS is not started).</summary>
    Connect,

    /// <summary>After the greeting.</summary>
    Banner,

    /// <summary>After EHLO (or HELO).</summary>
    Ehlo,

    /// <summary>After STARTTLS and the second EHLO (or after EHLO when no TLS was started).</summary>
    Tls,

    /// <summary>After AUTH (or where AUTH would be).</summary>
    Auth,

    /// <summary>After MAIL FROM of the first message.</summary>
    Mail,

    /// <summary>After the RCPT TOs of the first message: does the server take these recipients?</summary>
    Rcpt,
}

/// <summary>One step of the session and the server's reply to it, reported with <c>--quit-after</c>.</summary>
/// <param name="Step">connect, banner, ehlo, helo, starttls, auth.</param>
/// <param name="Reply">The reply, or <see langword="null"/> for the TCP connection.</param>
internal sealed record SessionStep(string Step, ReplyInfo? Reply);

/// <summary>What the connections did with a batch.</summary>
/// <param name="Results">One result per message, in batch order.</param>
/// <param name="Elapsed">From the start of the first connect to the last reply of the batch (the last QUIT not included), or to the failure of a last connection that could not be used.</param>
/// <param name="Tls">The TLS parameters of the first connection (with <c>--tls-optional</c>, a new connection after one with TLS must use TLS too), or <see langword="null"/> when the first had none (a later one may have had it).</param>
/// <param name="AuthenticatedAs">The user name when AUTH succeeded, else <see langword="null"/>.</param>
/// <param name="AuthMechanism">The mechanism AUTH succeeded with, else <see langword="null"/>.</param>
/// <param name="AcceptedBytes">The size of the accepted messages as read (before SMTP's line-end and dot encoding).</param>
/// <param name="SessionError">Why no message could be sent (connection, TLS, authentication), or why the messages left were not sent when the last new connection could not be used; else <see langword="null"/>.</param>
/// <param name="Steps">The session's steps up to <c>--quit-after</c>; empty without it.</param>
/// <param name="Connections">How many connections were made (more than one when the server ended a session at a limit, or with <c>--max-per-connection</c>).</param>
internal sealed record BatchReport(
    IReadOnlyList<MessageResult> Results,
    TimeSpan Elapsed,
    TlsInfo? Tls,
    string? AuthenticatedAs,
    string? AuthMechanism,
    long AcceptedBytes,
    string? SessionError,
    IReadOnlyList<SessionStep>? Steps = null,
    int Connections = 1);
