namespace MailPipe.Cli;

/// <summary>
/// The process exit codes of <c>mailpipe send</c>. For a batch the highest code met wins, so a script can test one
/// number: 0 only when every message was accepted; except that <see cref="OutcomeUnknown"/> outranks every other code, so
/// that a script retrying on another code (a timeout, 8) is never told that a batch with a possibly delivered message failed plainly.
/// </summary>
internal static class ExitCodes
{
    /// <summary>The codes in one sentence, for the help text.</summary>
    public const string Summary = "Exit codes: 0 every message accepted, 1 usage or input error, 2 connection or TLS failure (or a 421 at any stage: the server closing the connection), 3 authentication failed, 4 sender refused, 5 no recipient accepted, 6 message refused (or too large for the server), 7 outcome unknown (connection lost after the end of data), 8 protocol violation or timeout; for several messages the highest, except that 7 outranks all.";

    /// <summary>Every message accepted: a 2yz reply to the end of data, with at least one recipient accepted.</summary>
    public const int Success = 0;

    /// <summary>Bad command line or unusable input (a missing file, a message without sender or recipients).</summary>
    public const int UsageOrInput = 1;

    /// <summary>The connection could not be made or was lost before the message's end of data was written (nothing can have been delivered), the server closed it with a 421 at any stage (RFC 5321 §3.8), the greeting or EHLO/HELO was refused, or TLS failed.</summary>
    public const int ConnectionFailed = 2;

    /// <summary>The server refused the credentials.</summary>
    public const int AuthenticationFailed = 3;

    /// <summary>MAIL FROM was refused (a reply other than 421, which is <see cref="ConnectionFailed"/>).</summary>
    public const int SenderRefused = 4;

    /// <summary>Every RCPT TO was refused.</summary>
    public const int NoRecipientAccepted = 5;

    /// <summary>DATA, or the message after the end of data, was refused; or the server cannot take it as it is (larger than its SIZE limit, or needing an extension it lacks).</summary>
    public const int MessageRefused = 6;

    /// <summary>The end of data was written and its reply never came (the connection failed, or the batch was interrupted): the server may or may not have taken the message.</summary>
    public const int OutcomeUnknown = 7;

    /// <summary>The server broke the protocol, or a timeout expired.</summary>
    public const int ProtocolOrTimeout = 8;

    /// <summary>The exit code for an <see cref="SmtpException"/> met outside the message data (inside it, the outcome is <see cref="OutcomeUnknown"/>).</summary>
    /// <param name="errorCode">The exception's code.</param>
    /// <returns><see cref="ProtocolOrTimeout"/> for protocol violations and timeouts, <see cref="AuthenticationFailed"/> for an authentication mechanism that could not run, <see cref="MessageRefused"/> for a message the server cannot take (SIZE, a missing extension), <see cref="UsageOrInput"/> for a message file that could not be read when it was sent (it changed after it was read), <see cref="ConnectionFailed"/> otherwise (network, connection loss, TLS).</returns>
    public static int ForError(SmtpErrorCode errorCode) => errorCode switch
    {
        SmtpErrorCode.ProtocolError or SmtpErrorCode.ReplyTooLong or SmtpErrorCode.TimedOut => ProtocolOrTimeout,
        SmtpErrorCode.AuthenticationError => AuthenticationFailed,
        SmtpErrorCode.MessageTooLarge or SmtpErrorCode.ExtensionNotSupported => MessageRefused,
        SmtpErrorCode.ContentReadFailed => UsageOrInput,
        _ => ConnectionFailed,
    };

    /// <summary>The batch code: <see cref="OutcomeUnknown"/> when a message's outcome is unknown, else the highest of the codes.</summary>
    /// <param name="codes">One code per message.</param>
    /// <returns>The batch's code, or <see cref="Success"/> for none.</returns>
    public static int Combine(IEnumerable<int> codes)
    {
        var list = codes as IReadOnlyCollection<int> ?? [.. codes];
        return list.Contains(OutcomeUnknown) ? OutcomeUnknown : list.DefaultIfEmpty(Success).Max();
    }
}
