using System.Globalization;

namespace MailPipe.Cli;

/// <summary>What became of one message.</summary>
internal enum MessageOutcome
{
    /// <summary>The server took responsibility for it (2yz to the end of data).</summary>
    Accepted,

    /// <summary>The server refused it: MAIL, every RCPT, DATA or the message itself.</summary>
    Refused,

    /// <summary>The connection failed after the message data started: it may or may not have been delivered.</summary>
    Unknown,

    /// <summary>It never reached the server (bad input, or no usable connection).</summary>
    NotSent,
}

/// <summary>A server reply as the CLI reports it.</summary>
/// <param name="Code">The three-digit reply code.</param>
/// <param name="EnhancedStatus">The enhanced status code (RFC 3463), such as <c>5.1.1</c>, when the reply has one.</param>
/// <param name="Text">The reply text without code and enhanced status; the lines of a multi-line reply joined by a line feed.</param>
internal sealed record ReplyInfo(int Code, string? EnhancedStatus, string Text)
{
    /// <summary>Whether the reply is a 2yz positive completion.</summary>
    public bool IsPositive => Code / 100 == 2;

    /// <summary>Takes the parts of a reply.</summary>
    /// <param name="reply">The reply.</param>
    /// <returns>The report form.</returns>
    public static ReplyInfo From(SmtpReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var text = reply.Lines.Count == 1 ? reply.Text : string.Join('\n', reply.Lines.Skip(1).Prepend(reply.Text));
        return new ReplyInfo(reply.Code, reply.EnhancedStatusCode?.ToString(), text);
    }

    /// <summary>The reply on one line: code, enhanced status and text.</summary>
    /// <returns>For example <c>550 5.1.1 No such user</c>.</returns>
    public override string ToString()
    {
        var code = Code.ToString(CultureInfo.InvariantCulture);
        var text = Text.Replace("\n", " / ", StringComparison.Ordinal);
        var parts = new[] { code, EnhancedStatus, text }.Where(p => !string.IsNullOrEmpty(p));
        return string.Join(' ', parts);
    }
}

/// <summary>One recipient of a message and the reply to its RCPT TO.</summary>
/// <param name="Address">The forward-path.</param>
/// <param name="Reply">The server's reply, or <see langword="null"/> when RCPT was not sent or its reply never came.</param>
internal sealed record RecipientResult(string Address, ReplyInfo? Reply)
{
    /// <summary>Whether the server accepted the recipient (250 or 251).</summary>
    public bool Accepted => Reply is { IsPositive: true };
}

/// <summary>Everything the CLI reports about one message.</summary>
internal sealed record MessageResult
{
    /// <summary>The message's position in the batch, from 1.</summary>
    public required int Index { get; init; }

    /// <summary>The file it came from, or <see langword="null"/> for a message built from the options.</summary>
    public string? File { get; init; }

    /// <summary>The reverse-path used (or that would have been), empty for the null reverse-path.</summary>
    public string? From { get; init; }

    /// <summary>Each recipient with the reply to its RCPT TO, in envelope order.</summary>
    public IReadOnlyList<RecipientResult> Recipients { get; init; } = [];

    /// <summary>The reply to MAIL FROM, when sent.</summary>
    public ReplyInfo? MailReply { get; init; }

    /// <summary>The reply to DATA, when sent.</summary>
    public ReplyInfo? DataReply { get; init; }

    /// <summary>The reply to the end of message data, when received.</summary>
    public ReplyInfo? FinalReply { get; init; }

    /// <summary>What became of the message.</summary>
    public required MessageOutcome Outcome { get; init; }

    /// <summary>This message's exit code (see <see cref="ExitCodes"/>).</summary>
    public required int ExitCode { get; init; }

    /// <summary>Why it was not sent or why the outcome is unknown, when no reply says it.</summary>
    public string? Error { get; init; }

    /// <summary>Where the embedded server saved the message, when it did.</summary>
    public string? SavedTo { get; init; }

    /// <summary>How many mail transactions carried the message: more than 1 when recipients refused as too many (<c>452</c>) were sent it in follow-up transactions.</summary>
    public int Transactions { get; init; } = 1;

    /// <summary>Whether <see cref="Error"/> is the connection's (said once on standard error, not again per message in text).</summary>
    public bool SessionFailure { get; init; }
}

/// <summary>The totals of one <c>mailpipe send</c> run, printed last.</summary>
internal sealed record BatchSummary
{
    /// <summary>The messages of the run, input errors included.</summary>
    public required int Messages { get; init; }

    /// <summary>How many the server accepted.</summary>
    public int Accepted { get; init; }

    /// <summary>How many it refused.</summary>
    public int Refused { get; init; }

    /// <summary>How many have an unknown outcome.</summary>
    public int Unknown { get; init; }

    /// <summary>How many were not sent.</summary>
    public int NotSent { get; init; }

    /// <summary>The size of the accepted messages, as read (before SMTP's line-end and dot encoding).</summary>
    public long Bytes { get; init; }

    /// <summary>From the start of the connect to the last reply of the batch (QUIT not included), or to the failure of a last connection that could not be used; zero when nothing was sent.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>The run's exit code.</summary>
    public int ExitCode { get; init; }

    /// <summary>The server, when a connection was tried.</summary>
    public ServerAddress? Server { get; init; }

    /// <summary>The TLS parameters of the connection, or <see langword="null"/>.</summary>
    public TlsInfo? Tls { get; init; }

    /// <summary>The user name when AUTH succeeded.</summary>
    public string? AuthenticatedAs { get; init; }

    /// <summary>The mechanism AUTH succeeded with.</summary>
    public string? AuthMechanism { get; init; }

    /// <summary>Why the connection could not be used (connection, TLS, authentication): the first, or the last new one when messages were left for it; or <see langword="null"/>.</summary>
    public string? Error { get; init; }

    /// <summary>How many connections were made: 0 when none was tried, more than 1 when the server ended a session at a limit or with <c>--max-per-connection</c>.</summary>
    public int Connections { get; init; }

    /// <summary>The session's steps with <c>--quit-after</c>, else <see langword="null"/>.</summary>
    public IReadOnlyList<SessionStep>? Steps { get; init; }

    /// <summary>Accepted messages per second of <see cref="Elapsed"/>; 0 when nothing was timed.</summary>
    public double MessagesPerSecond => Elapsed > TimeSpan.Zero ? Accepted / Elapsed.TotalSeconds : 0;

    /// <summary>Counts the results.</summary>
    /// <param name="results">Every message's result.</param>
    /// <param name="report">What the connection did, or <see langword="null"/> when none was made.</param>
    /// <param name="server">The server, or <see langword="null"/>.</param>
    /// <returns>The summary.</returns>
    public static BatchSummary From(IReadOnlyCollection<MessageResult> results, BatchReport? report, ServerAddress? server) => new()
    {
        Messages = results.Count,
        Accepted = results.Count(r => r.Outcome == MessageOutcome.Accepted),
        Refused = results.Count(r => r.Outcome == MessageOutcome.Refused),
        Unknown = results.Count(r => r.Outcome == MessageOutcome.Unknown),
        NotSent = results.Count(r => r.Outcome == MessageOutcome.NotSent),
        Bytes = report?.AcceptedBytes ?? 0,
        Elapsed = report?.Elapsed ?? TimeSpan.Zero,
        ExitCode = ExitCodes.Combine(results.Select(r => r.ExitCode)),
        Server = report is null ? null : server,
        Tls = report?.Tls,
        AuthenticatedAs = report?.AuthenticatedAs,
        AuthMechanism = report?.AuthMechanism,
        Error = report?.SessionError,
        Steps = report?.Steps,
        Connections = report?.Connections ?? 0,
    };
}
