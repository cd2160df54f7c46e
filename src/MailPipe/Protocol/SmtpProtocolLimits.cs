namespace MailPipe;

/// <summary>
/// Limits that keep a malformed or hostile server from making the client buffer without end. Each one exceeded raises
/// <see cref="SmtpProtocolException"/> with <see cref="SmtpErrorCode.ReplyTooLong"/>.
/// </summary>
/// <remarks>
/// RFC 5321 §4.5.3.1.5 sets 512 octets for a reply line (CRLF included); real servers send longer ones, so the defaults
/// are generous but finite.
/// </remarks>
public sealed class SmtpProtocolLimits
{
    /// <summary>Limits with every default.</summary>
    public static SmtpProtocolLimits Default { get; } = new();

    /// <summary>Longest reply line accepted, in bytes, line break included. Default 8,192; minimum 512 (RFC 5321 §4.5.3.1.5).</summary>
    public int MaxReplyLineLength { get; init; } = 8192;

    /// <summary>Most lines accepted in one reply. Default 1,000.</summary>
    public int MaxReplyLines { get; init; } = 1000;

    /// <summary>Most bytes accepted in one reply, line breaks included. Default 262,144 (256 KiB).</summary>
    public int MaxReplyBytes { get; init; } = 256 * 1024;

    /// <summary>Checks the limits.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A limit is below its minimum.</exception>
    internal void Validate()
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxReplyLineLength, 512, nameof(MaxReplyLineLength));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxReplyLines, 1, nameof(MaxReplyLines));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxReplyBytes, MaxReplyLineLength, nameof(MaxReplyBytes));
    }
}
