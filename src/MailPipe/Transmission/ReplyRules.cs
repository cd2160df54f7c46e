namespace MailPipe.Transmission;

/// <summary>
/// Which replies a command can get (RFC 5321 §4.3.2, RFC 3030 §2, RFC 3207 §4, RFC 4954 §4), checked for every reply
/// against the command it is matched to. A reply outside them means the server and the client disagree about which
/// reply belongs to which command: every later match would be wrong, so the connection must be broken.
/// </summary>
/// <remarks>
/// The check is by class, not by the exact lists of §4.3.2, which real servers exceed (Postfix answers RCPT with 554,
/// MAIL with 530): 1yz is never valid; 3yz only as 354 to DATA and 334 to AUTH; DATA can get no 2yz before its data;
/// 221 only answers QUIT (elsewhere it is the server closing, like 421). Commands MailPipe did not name (raw ones)
/// are not checked.
/// </remarks>
internal static class ReplyRules
{
    /// <summary>The pending-reply name of the greeting.</summary>
    public const string Greeting = "(greeting)";

    /// <summary>The pending-reply name of the end of DATA content (the final dot).</summary>
    public const string EndOfData = "end of data";

    /// <summary>The pending-reply name of the last BDAT chunk (its reply is the message's final one).</summary>
    public const string LastChunk = "BDAT LAST";

    /// <summary>Whether <paramref name="reply"/> says the service is closing the transmission channel: 421 to anything, or 221 to anything but QUIT.</summary>
    /// <param name="command">The pending-reply name of the command the reply answers, or <see langword="null"/> for an unsolicited reply.</param>
    /// <param name="reply">The reply.</param>
    /// <returns>Whether the server is closing.</returns>
    /// <remarks>A raw command's name is its verb as the caller wrote it: verbs are case-insensitive (RFC 5321 §2.4), so <c>quit</c> is QUIT.</remarks>
    public static bool IsClosing(string? command, SmtpReply reply) =>
        reply.Code == 421 || (reply.Code == 221 && !string.Equals(command, "QUIT", StringComparison.OrdinalIgnoreCase));

    /// <summary>Checks a reply against its command.</summary>
    /// <param name="command">The pending-reply name of the command.</param>
    /// <param name="reply">The reply matched to it.</param>
    /// <returns><see langword="null"/> when the command can get this reply; else why not.</returns>
    public static string? Check(string command, SmtpReply reply)
    {
        var kind = reply.Code / 100;
        switch (command)
        {
            case "DATA":
                return reply.Code == 354 || kind is 4 or 5 ? null : Violation(command, reply, "DATA can only get 354 or a refusal before its data is sent");
            case "AUTH":
                return kind is 2 or 4 or 5 || reply.Code == 334 ? null : Violation(command, reply, "AUTH can only get 334, 2yz or a refusal");
            case Greeting or EndOfData or "BDAT" or LastChunk or "MAIL FROM" or "RCPT TO" or "RSET" or "NOOP" or "VRFY" or "EHLO" or "HELO" or "QUIT" or "STARTTLS":
                return kind is 2 or 4 or 5 ? null : Violation(command, reply, "only DATA and AUTH can get a 1yz or 3yz reply");
            default:
                return null;
        }
    }

    private static string Violation(string command, SmtpReply reply, string rule) =>
        $"The server answered {command} with {reply.Code}, which {command} cannot get ({rule}; RFC 5321 §4.3.2): a reply was dropped, doubled or sent early, so no later reply can be matched to its command. The connection was closed.";
}
