namespace MailPipe;

/// <summary>The BODY parameter of MAIL (RFC 6152, RFC 3030 §3).</summary>
public enum SmtpBodyType
{
    /// <summary>
    /// Decide from the content (RFC 6152, RFC 3030): in-memory content is scanned before MAIL — 8-bit bytes go with
    /// <c>BODY=8BITMIME</c> or, without it, the message is not sent; NUL bytes go with <c>BODY=BINARYMIME</c> when the
    /// server offers CHUNKING and BINARYMIME, else the message is not sent. Streamed content declares
    /// <c>BODY=8BITMIME</c> whenever the server offers it; otherwise it is checked as it is sent, and the first 8-bit
    /// (or NUL) byte aborts the transaction without ending the data (<see cref="SmtpContentRefusedException"/>).
    /// </summary>
    Auto,

    /// <summary>
    /// No BODY parameter (7-bit content, RFC 5321). Content with an 8-bit octet is not sent, even to a server that offers
    /// 8BITMIME (in memory: before MAIL; streamed: the transaction is aborted at that octet); the result's exception says
    /// where the octet is and what to do.
    /// </summary>
    SevenBit,

    /// <summary><c>BODY=8BITMIME</c> (RFC 6152); the server must offer 8BITMIME.</summary>
    EightBitMime,

    /// <summary><c>BODY=BINARYMIME</c> (RFC 3030 §3): content sent unchanged with BDAT; the server must offer BINARYMIME and CHUNKING.</summary>
    BinaryMime,
}

/// <summary>What a delivery status notification returns of the message: the RET parameter of MAIL (RFC 3461 §4.3).</summary>
public enum DsnReturn
{
    /// <summary><c>RET=FULL</c>: the whole message.</summary>
    Full,

    /// <summary><c>RET=HDRS</c>: the headers only.</summary>
    Headers,
}

/// <summary>When to send a delivery status notification: the NOTIFY parameter of RCPT (RFC 3461 §4.1).</summary>
[Flags]
public enum DsnNotify
{
    /// <summary>No NOTIFY parameter: the server's default.</summary>
    Default = 0,

    /// <summary><c>NOTIFY=NEVER</c>; cannot be combined with the others.</summary>
    Never = 1,

    /// <summary><c>SUCCESS</c>.</summary>
    Success = 2,

    /// <summary><c>FAILURE</c>.</summary>
    Failure = 4,

    /// <summary><c>DELAY</c>.</summary>
    Delay = 8,
}

/// <summary>One forward-path of an envelope, with its RCPT parameters (RFC 5321 §4.1.1.3, RFC 3461 §4).</summary>
public sealed record SmtpRecipient
{
    /// <summary>Creates a recipient.</summary>
    /// <param name="address">The mailbox, such as <c>jdoe@example.org</c> (angle brackets optional; UTF-8 allowed with SMTPUTF8).</param>
    /// <exception cref="ArgumentException">The address is empty, holds CR, LF, NUL or angle brackets inside, or is not a mailbox (RFC 5321 §4.1.2: local-part@domain, or Postmaster alone).</exception>
    public SmtpRecipient(string address)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        SmtpCommandWriter.ValidateMailbox(address, nameof(address), forwardPath: true);
        Address = SmtpCommandWriter.StripBrackets(address).ToString();
    }

    /// <summary>The mailbox without angle brackets.</summary>
    public string Address { get; }

    /// <summary>DSN NOTIFY (RFC 3461 §4.1); sent only when the server offers DSN.</summary>
    public DsnNotify Notify { get; init; }

    /// <summary>DSN ORCPT, the original recipient's address (RFC 3461 §4.2), sent as <c>rfc822;</c> + xtext, or, when it is not ASCII, as <c>utf-8;</c> + utf-8-addr-xtext (RFC 6533 §3); a leading <c>rfc822;</c> or <c>utf-8;</c> given with it is not written twice. Only when the server offers DSN.</summary>
    public string? OriginalRecipient { get; init; }

    /// <summary>Further RCPT parameters exactly as they go on the line (for extensions MailPipe has no option for). A NOTIFY or ORCPT given here replaces the one <see cref="Notify"/> or <see cref="OriginalRecipient"/> would write: each keyword goes on the line once.</summary>
    public string? Parameters { get; init; }

    /// <summary>A recipient with no parameters. Explicit, because it checks the address and can throw (an implicit conversion must not).</summary>
    /// <param name="address">The mailbox.</param>
    /// <exception cref="ArgumentException"><paramref name="address"/> is empty, holds CR, LF or NUL or angle brackets inside, or is not a mailbox (RFC 5321 §4.1.2).</exception>
    public static explicit operator SmtpRecipient(string address) => new(address);

    /// <summary>A recipient with no parameters.</summary>
    /// <param name="address">The mailbox.</param>
    /// <returns>The recipient.</returns>
    public static SmtpRecipient FromString(string address) => new(address);
}

/// <summary>
/// The envelope of a mail transaction (RFC 5321 §2.3.1): the reverse-path, the forward-paths and the MAIL/RCPT
/// parameters as typed options. Validated on construction: nothing with CR, LF or NUL can reach the wire.
/// </summary>
public sealed record SmtpEnvelope
{
    /// <summary>Creates an envelope.</summary>
    /// <param name="reversePath">The sender's mailbox; empty for the null reverse-path <c>&lt;&gt;</c> (bounces).</param>
    /// <param name="recipients">At least one forward-path.</param>
    /// <exception cref="ArgumentNullException"><paramref name="reversePath"/> or <paramref name="recipients"/> is null, or one of the recipients is.</exception>
    /// <exception cref="ArgumentException">No recipient, or an address holds CR, LF, NUL or angle brackets inside or is not a mailbox (RFC 5321 §4.1.2).</exception>
    public SmtpEnvelope(string reversePath, IEnumerable<SmtpRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(reversePath);
        ArgumentNullException.ThrowIfNull(recipients);
        SmtpCommandWriter.ValidateMailbox(reversePath, nameof(reversePath), forwardPath: false);
        ReversePath = SmtpCommandWriter.StripBrackets(reversePath).ToString();
        Recipients = [.. recipients];
        if (Recipients.Count == 0)
        {
            throw new ArgumentException("An envelope needs at least one recipient.", nameof(recipients));
        }

        for (var i = 0; i < Recipients.Count; i++)
        {
            if (Recipients[i] is null)
            {
                throw new ArgumentNullException(nameof(recipients), $"Recipient {i} of the envelope is null.");
            }
        }
    }

    /// <summary>Creates an envelope from plain addresses.</summary>
    /// <param name="reversePath">The sender's mailbox; empty for <c>&lt;&gt;</c>.</param>
    /// <param name="recipients">At least one recipient mailbox.</param>
    /// <exception cref="ArgumentException">No recipient, or an invalid address.</exception>
    public SmtpEnvelope(string reversePath, params string[] recipients)
        : this(reversePath, (recipients ?? throw new ArgumentNullException(nameof(recipients))).Select(static r => new SmtpRecipient(r)))
    {
    }

    /// <summary>The reverse-path without angle brackets (empty for the null reverse-path).</summary>
    public string ReversePath { get; }

    /// <summary>The forward-paths, in the order the RCPT commands go out.</summary>
    public IReadOnlyList<SmtpRecipient> Recipients { get; }

    /// <summary>The BODY parameter (RFC 6152, RFC 3030). Default <see cref="SmtpBodyType.Auto"/>.</summary>
    public SmtpBodyType Body { get; init; }

    /// <summary>The message size in bytes to declare with SIZE (RFC 1870 §3), 0 or more (a negative one is an <see cref="ArgumentOutOfRangeException"/> when sent); <see langword="null"/> to declare the content's size when it is known: text in memory (bytes, a <see cref="System.IO.MemoryStream"/>) as it goes out (bare CR or LF as CRLF, a missing last CRLF added), another seekable stream's length as it is.</summary>
    public long? Size { get; init; }

    /// <summary>
    /// Ask for SMTPUTF8 (RFC 6531) even when every address is ASCII (for a message with UTF-8 headers). It is used
    /// anyway when an address is not ASCII; the send is then not attempted on a server without SMTPUTF8.
    /// </summary>
    public bool SmtpUtf8 { get; init; }

    /// <summary>DSN RET (RFC 3461 §4.3); sent only when the server offers DSN.</summary>
    public DsnReturn? Return { get; init; }

    /// <summary>DSN ENVID (RFC 3461 §4.4): at most 100 printable US-ASCII characters (space to <c>~</c>, else an <see cref="ArgumentOutOfRangeException"/> when sent), sent as xtext; only when the server offers DSN.</summary>
    public string? EnvelopeId { get; init; }

    /// <summary>REQUIRETLS (RFC 8689): the send is not attempted unless the session is encrypted and the server offers REQUIRETLS.</summary>
    public bool RequireTls { get; init; }

    /// <summary>
    /// Further MAIL parameters exactly as they go on the line (for extensions MailPipe has no option for). A keyword
    /// MailPipe writes itself (SIZE, BODY, SMTPUTF8, REQUIRETLS, RET, ENVID) given here replaces MailPipe's own: each
    /// keyword goes on the line once (RFC 5321 §4.1.2), with the caller's value (MailPipe's own checks, such as the size
    /// against the server's SIZE limit, still use what it knows). Only for extensions that leave the replies as RFC 5321
    /// has them: one that changes them, such as <c>PRDR</c> (Exim answers the end of data with 353 and then a reply per
    /// recipient), is a protocol error to MailPipe, and the send ends <see cref="SmtpSendOutcome.Unknown"/> with the
    /// connection closed.
    /// </summary>
    public string? MailParameters { get; init; }

    /// <summary>Whether the envelope this one was copied from (<see cref="WithRecipients"/>) had an address outside ASCII.</summary>
    private readonly bool _nonAsciiBeforeCopy;

    /// <summary>A copy of this envelope (reverse-path and parameters) with other forward-paths, already checked.</summary>
    private SmtpEnvelope(SmtpEnvelope original, IReadOnlyList<SmtpRecipient> recipients)
        : this(original)
    {
        Recipients = recipients;

        // The same MAIL parameters as the original: SMTPUTF8 stays declared when a recipient left out needed it.
        _nonAsciiBeforeCopy = original.HasNonAsciiAddress;
    }

    /// <summary>A copy of this envelope with <paramref name="recipients"/> (a non-empty subset of its own, already valid).</summary>
    internal SmtpEnvelope WithRecipients(IReadOnlyList<SmtpRecipient> recipients) => new(this, recipients);

    /// <summary>
    /// Value equality, as a record promises: the same reverse path, the same recipients in the same order (compared as
    /// values, not as list instances) and the same parameters.
    /// </summary>
    /// <param name="other">The other envelope.</param>
    /// <returns>Whether both are the same envelope.</returns>
    public bool Equals(SmtpEnvelope? other) =>
        ReferenceEquals(this, other) || (other is not null
            && string.Equals(ReversePath, other.ReversePath, StringComparison.Ordinal)
            && Recipients.SequenceEqual(other.Recipients)
            && Body == other.Body && Size == other.Size && SmtpUtf8 == other.SmtpUtf8 && Return == other.Return
            && string.Equals(EnvelopeId, other.EnvelopeId, StringComparison.Ordinal) && RequireTls == other.RequireTls
            && string.Equals(MailParameters, other.MailParameters, StringComparison.Ordinal)
            && _nonAsciiBeforeCopy == other._nonAsciiBeforeCopy);

    /// <summary>A hash code consistent with <see cref="Equals(SmtpEnvelope?)"/>.</summary>
    /// <returns>The hash code.</returns>
    public override int GetHashCode()
    {
        var hash = default(HashCode);
        hash.Add(ReversePath, StringComparer.Ordinal);
        foreach (var recipient in Recipients)
        {
            hash.Add(recipient);
        }

        hash.Add(Body);
        hash.Add(Size);
        hash.Add(EnvelopeId, StringComparer.Ordinal);
        hash.Add(MailParameters, StringComparer.Ordinal);
        return hash.ToHashCode();
    }

    /// <summary>The members for <see cref="ToString"/>: the recipients as their addresses, not as a list's type name.</summary>
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("ReversePath = ").Append(ReversePath.Length == 0 ? "<>" : ReversePath)
            .Append(", Recipients = [").AppendJoin(", ", Recipients.Select(static r => r.Address)).Append(']')
            .Append(", Body = ").Append(Body)
            .Append(", Size = ").Append(Size)
            .Append(", SmtpUtf8 = ").Append(SmtpUtf8)
            .Append(", Return = ").Append(Return)
            .Append(", EnvelopeId = ").Append(EnvelopeId)
            .Append(", RequireTls = ").Append(RequireTls)
            .Append(", MailParameters = ").Append(MailParameters);
        return true;
    }

    /// <summary>Whether an address needs SMTPUTF8 (a byte outside ASCII), in this envelope or in the one it was copied from for some of its recipients.</summary>
    internal bool HasNonAsciiAddress
    {
        get
        {
            if (_nonAsciiBeforeCopy || !System.Text.Ascii.IsValid(ReversePath))
            {
                return true;
            }

            for (var i = 0; i < Recipients.Count; i++)
            {
                if (!System.Text.Ascii.IsValid(Recipients[i].Address))
                {
                    return true;
                }
            }

            return false;
        }
    }
}
