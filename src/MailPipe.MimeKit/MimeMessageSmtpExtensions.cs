using MimeKit;

namespace MailPipe;

/// <summary>
/// Sends MimeKit <see cref="MimeMessage"/>s with MailPipe: on an <see cref="AsyncSmtpSession"/> or through the shared
/// <see cref="ISmtpSender"/>. The message is written by MimeKit straight into the SMTP data as it is sent, never
/// buffered whole (a <see cref="SmtpMessage.FromWriter"/> content source), and is prepared for the connection that
/// carries it (<see cref="SmtpMessage.ForConnection"/>), before MAIL:
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><description><b>Envelope</b> (<see cref="GetSmtpEnvelope"/>): the reverse path is <c>Sender</c>, else the first
/// <c>From</c>; the recipients are <c>To</c>, <c>Cc</c> and <c>Bcc</c>, in header order, each mailbox once. When the message carries
/// <c>Resent-Sender</c>, <c>Resent-From</c>, <c>Resent-To</c>, <c>Resent-Cc</c> or <c>Resent-Bcc</c> (RFC 5322 §3.6.6) it is a resent message: <c>Resent-Sender</c>, else the
/// first <c>Resent-From</c>, to <c>Resent-To</c>, <c>Resent-Cc</c> and <c>Resent-Bcc</c> (of the newest block of Resent-* fields when it
/// was resent more than once: the recipients of an earlier resending do not get it again). A field of these that
/// MimeKit cannot parse is an <see cref="ArgumentException"/>, never skipped. The domains of a parsed field go
/// in the form written there (MimeKit decodes an A-label to Unicode in <see cref="MailboxAddress.Address"/>, which would need
/// SMTPUTF8); a field built or changed in code gives its addresses as <see cref="MailboxAddress.Address"/> does.</description></item>
/// <item><description><b>Bcc never on the wire</b>: the <c>Bcc</c> and <c>Resent-Bcc</c> fields are left out of the data
/// (their addresses are in the envelope only), from the message's own header (an attached message goes as it is); line ends are CRLF;
/// a field of that header or of a part's header with a line of more than 998 octets (kept raw from a parsed message) is refolded first, in the
/// caller's message, by setting its value again. Otherwise the data is byte for byte what
/// <see cref="MimeMessage.WriteTo(FormatOptions, Stream, CancellationToken)"/> writes.</description></item>
/// <item><description><b>Body type</b>, from the MIME structure (the parts' declared Content-Transfer-Encoding, not
/// their bytes) and declared explicitly: a binary part (or a non-text part with no encoding whose bytes are not 7-bit
/// text, RFC 2045: an octet over 127, a NUL, a bare CR) goes as
/// <c>BODY=BINARYMIME</c> with BDAT when the server offers BINARYMIME and CHUNKING; an 8bit part (or a text part with no
/// encoding) as <c>BODY=8BITMIME</c> when the server offers 8BITMIME — as is any other message there (its headers may
/// hold 8-bit octets: raw UTF-8 of a parsed message, a UTF-8 mailbox; RFC 6532). Otherwise the parts that need it, and only those, are prepared first with
/// MimeKit's <see cref="MimeEntity.Prepare(EncodingConstraint, int)"/> (7-bit, lines of at most 78 characters; or
/// 8-bit, 998, for binary parts on an 8BITMIME server); any other message with a line of more than 998 octets (RFC 5321
/// §4.5.3.1.6) in a part without base64 or quoted-printable is prepared for lines of at most 998 octets, so that only a
/// part with a longer line changes. <b>That preparation modifies the caller's message</b> (the
/// transfer encodings of those parts, as MailKit's <c>SmtpClient</c> does): what is sent is still the same
/// message.</description></item>
/// <item><description><b>Addresses</b>: a non-ASCII address goes with <c>SMTPUTF8</c> when the server offers it, as does a
/// message whose sent header fields hold 8-bit octets (a UTF-8 mailbox in Reply-To; RFC 6531 §3.4);
/// otherwise its domain goes in A-label form (IDNA), and a non-ASCII local part (or a domain with no A-label form) makes the send return
/// <see cref="SmtpSendOutcome.NotSent"/> with <see cref="SmtpErrorCode.ExtensionNotSupported"/> before MAIL. So does a header
/// field with 8-bit octets (raw UTF-8 of a parsed message) for a server without 8BITMIME, the exception naming the field,
/// where it is, and what to do (preparing parts for 7-bit never re-encodes a field).</description></item>
/// <item><description><b>Failures</b>: an exception while MimeKit writes the message (a failing attachment stream)
/// is a content failure: the message is never ended, the result is <see cref="SmtpSendOutcome.NotSent"/> with
/// <see cref="SmtpErrorCode.ContentReadFailed"/>. A retry of the same <see cref="SmtpMessage"/> (or a new send of the
/// same <see cref="MimeMessage"/>) writes the message again, whole.</description></item>
/// </list>
/// <para>A <see cref="MimeMessage"/> is not thread-safe: do not change it, or send it on two connections at once, while
/// it is being sent. Attachment streams are read once per send and must be seekable to be sent again.</para>
/// </remarks>
public static class MimeMessageSmtpExtensions
{
    /// <summary>One writer run at a time per message (see <see cref="WriteAsync"/>); an entry lives as long as its message.</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<MimeMessage, SemaphoreSlim> Runs = new();

    /// <summary>The format of the data: CRLF line ends; otherwise MimeKit's defaults.</summary>
    private static readonly FormatOptions DataFormat = CreateDataFormat();

    /// <summary>
    /// The envelope that <see cref="ToSmtpMessage"/> sends a message with, as written in its headers (addresses as they
    /// are, Unicode included; the body type <see cref="SmtpBodyType.Auto"/> until a connection is known). See the class
    /// remarks for the rules.
    /// </summary>
    /// <param name="message">The message.</param>
    /// <returns>The envelope.</returns>
    /// <exception cref="ArgumentException">The message has no sender address (Sender, From, or Resent-Sender/Resent-From) or no recipient, or a field of these cannot be parsed.</exception>
    public static SmtpEnvelope GetSmtpEnvelope(this MimeMessage message) => MimeEnvelope.Create(message);

    /// <summary>
    /// A MailPipe message that sends <paramref name="message"/>: its envelope and body type are chosen for each
    /// connection that carries it, before MAIL, and MimeKit writes the data as it is sent. Send it with
    /// <see cref="AsyncSmtpSession.SendAsync(SmtpMessage, CancellationToken)"/>, a batch, or an
    /// <see cref="ISmtpSender"/>; send the same <see cref="SmtpMessage"/> again to retry.
    /// </summary>
    /// <param name="message">The message; see the class remarks for how it is sent (and when it is prepared in place).</param>
    /// <param name="envelope">
    /// The envelope to use instead of the one in the headers (for example a bounce address as reverse path); its
    /// body type and SMTPUTF8 flag are still chosen per connection. <see langword="null"/>: <see cref="GetSmtpEnvelope"/>.
    /// </param>
    /// <returns>The message to send.</returns>
    /// <exception cref="ArgumentException"><paramref name="envelope"/> is null and the headers give no sender or no recipient.</exception>
    public static SmtpMessage ToSmtpMessage(this MimeMessage message, SmtpEnvelope? envelope = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        var baseEnvelope = envelope ?? MimeEnvelope.Create(message);
        return SmtpMessage.ForConnection(baseEnvelope, capabilities => ForConnection(message, baseEnvelope, capabilities));
    }

    /// <summary>Sends one <see cref="MimeMessage"/> as one mail transaction; see the class remarks. Send EHLO first.</summary>
    /// <param name="session">A connected session after EHLO.</param>
    /// <param name="message">The message.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed and an unfinished message is never ended.</param>
    /// <returns>The result (see <see cref="AsyncSmtpSession.SendAsync(SmtpMessage, CancellationToken)"/>): negative replies are in it, not thrown.</returns>
    /// <exception cref="ArgumentException">The headers give no sender or no recipient; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<SmtpSendResult> SendAsync(this AsyncSmtpSession session, MimeMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.SendAsync(message.ToSmtpMessage(), cancellationToken);
    }

    /// <summary>Sends many <see cref="MimeMessage"/>s on one session, transactions pipelined as <see cref="AsyncSmtpSession.SendBatchAsync(IEnumerable{SmtpMessage}, CancellationToken)"/> does; see the class remarks.</summary>
    /// <param name="session">A connected session after EHLO.</param>
    /// <param name="messages">The messages, sent in order; every envelope is made before anything is sent.</param>
    /// <param name="cancellationToken">Cancels; the connection is then closed.</param>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="ArgumentException">A message's headers give no sender or no recipient; nothing was sent.</exception>
    /// <exception cref="InvalidOperationException">Not connected, or another operation is running.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(this AsyncSmtpSession session, IEnumerable<MimeMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(session);
        return session.SendBatchAsync(ToSmtpMessages(messages), cancellationToken);
    }

    /// <summary>
    /// Sends one <see cref="MimeMessage"/> through the shared sender: the envelope and body type are chosen for the
    /// pooled connection that carries it, from that connection's capabilities, before MAIL; see the class remarks.
    /// </summary>
    /// <param name="sender">The sender.</param>
    /// <param name="message">The message.</param>
    /// <param name="cancellationToken">Cancels the wait and the send (see <see cref="ISmtpSender.SendAsync"/>).</param>
    /// <returns>The result: negative replies are in it, not thrown.</returns>
    /// <exception cref="ArgumentException">The headers give no sender or no recipient; nothing was sent.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<SmtpSendResult> SendAsync(this ISmtpSender sender, MimeMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendAsync(message.ToSmtpMessage(), cancellationToken);
    }

    /// <summary>Sends many <see cref="MimeMessage"/>s through the shared sender; see <see cref="SendAsync(ISmtpSender, MimeMessage, CancellationToken)"/>.</summary>
    /// <param name="sender">The sender.</param>
    /// <param name="messages">The messages; every envelope is made before anything is sent.</param>
    /// <param name="cancellationToken">Cancels the wait and the sends.</param>
    /// <returns>One result per message, in order.</returns>
    /// <exception cref="ArgumentException">A message's headers give no sender or no recipient; nothing was sent.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(this ISmtpSender sender, IEnumerable<MimeMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(sender);
        return sender.SendBatchAsync(ToSmtpMessages(messages), cancellationToken);
    }

    /// <summary>The message made for one connection (the selector of <see cref="SmtpMessage.ForConnection"/>).</summary>
    internal static SmtpMessage ForConnection(MimeMessage message, SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        try
        {
            return Prepared(message, envelope, capabilities);
        }
        catch (OperationCanceledException ex)
        {
            // The selector gets no token: a cancellation here is a content stream's own failure (the timeout of a
            // stream read over HTTP), read before MAIL. Escaping as such, it looked like the caller's cancellation;
            // as any other failure of the content it makes the send NotSent with ContentReadFailed.
            throw new IOException($"A content stream of the message failed while it was read before MAIL: {ex.Message}", ex);
        }
    }

    private static SmtpMessage Prepared(MimeMessage message, SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        // BODY=8BITMIME whenever the server offers it, as the core declares it for any streamed content: the MIME
        // structure says nothing of the headers, which may carry 8-bit octets over 7-bit parts (raw UTF-8 kept from a
        // parsed message, a UTF-8 mailbox under SMTPUTF8, RFC 6532).
        var body = capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        MimeBody.FoldLongHeaderLines(message, 998);
        if (!capabilities.Supports8BitMime && MimeEightBitFields.Problem(message) is { } problem)
        {
            // Preparing parts for 7-bit never re-encodes a field: this message would be refused at its first 8-bit
            // octet, inside the data, named only by its offset, and the connection closed. Said here, before MAIL.
            throw new SmtpException(SmtpErrorCode.ExtensionNotSupported, problem);
        }

        switch (MimeBody.Need(message))
        {
            case MimeBodyNeed.Binary when capabilities.SupportsBinaryMime && capabilities.SupportsChunking:
                body = SmtpBodyType.BinaryMime;
                break;
            case MimeBodyNeed.Binary when capabilities.Supports8BitMime:
                MimeBody.PrepareParts(message, EncodingConstraint.EightBit, 998, MimeBodyNeed.EightBit);
                body = SmtpBodyType.EightBitMime;
                break;
            case MimeBodyNeed.Binary or MimeBodyNeed.EightBit when !capabilities.Supports8BitMime:
                // MimeKit's 7-bit preparation (lines of at most 78 characters) of the parts that need it, only those.
                MimeBody.PrepareParts(message, EncodingConstraint.SevenBit, 78, MimeBodyNeed.SevenBit);
                break;
            default:
                // No line over 998 octets (RFC 5321 §4.5.3.1.6; servers refuse them): MimeKit re-encodes a part that
                // has one (minified HTML in a part without an encoding), as MailKit's SmtpClient does before it sends.
                // Only then, and only that part: its preparation reads the part through a filter (+25 % CPU per 64 KiB
                // message), and MimeKit's preparation of the whole message re-encoded parts without a long line too.
                if (MimeBody.MayHaveLongLine(message, 998))
                {
                    MimeBody.PrepareParts(message, capabilities.Supports8BitMime ? EncodingConstraint.EightBit : EncodingConstraint.SevenBit, 998, MimeBodyNeed.Binary);
                }

                break;
        }

        // SMTPUTF8 follows from a non-ASCII address when the server offers it (the core adds the parameter); without
        // it, domains go as A-labels.
        var sent = capabilities.SupportsSmtpUtf8 ? envelope : ALabelsOrAsIs(envelope);
        // A UTF-8 header field (a UTF-8 mailbox in Reply-To, raw UTF-8 of a parsed message) needs SMTPUTF8 too (RFC 6531
        // §3.4), when the server offers it; without it the message goes as before (BODY=8BITMIME). The flag of an
        // envelope of the caller's own is chosen so too (documented: per connection), not sent to a server without it.
        sent = sent with { Body = body, SmtpUtf8 = capabilities.SupportsSmtpUtf8 && (sent.SmtpUtf8 || MimeBody.HasEightBitHeader(message)) };
        return SmtpMessage.FromWriter(sent, (stream, ct) => WriteAsync(message, stream, ct));
    }

    /// <summary>
    /// Writes <paramref name="message"/> for one send, one send of the same message at a time. A send that stopped
    /// (a lost connection, a refusal) returns its result while its run of MimeKit's writer may still be between two
    /// writes; a retry, or a send of the same message on another connection, would read the same content streams at
    /// the same time (MimeKit seeks each one to its start): the two outputs mixed, and a retry sent a message that was
    /// not the caller's. A stopped run ends at its next write (its reader is gone), so the wait is short.
    /// </summary>
    private static async Task WriteAsync(MimeMessage message, Stream stream, CancellationToken cancellationToken)
    {
        var gate = Runs.GetValue(message, static _ => new SemaphoreSlim(1, 1));
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await message.WriteToAsync(DataFormat, new TopLevelFieldFilter(stream), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            gate.Release();
        }
    }

    /// <summary>
    /// The envelope with A-label domains; as it is when a domain has no A-label form (RFC 5890): the session then refuses
    /// it before MAIL, NotSent with <see cref="SmtpErrorCode.ExtensionNotSupported"/> naming the address, as it does a
    /// non-ASCII local part (thrown from here, the failure was reported as a content read failure).
    /// </summary>
    private static SmtpEnvelope ALabelsOrAsIs(SmtpEnvelope envelope)
    {
        try
        {
            return MimeEnvelope.ToALabels(envelope);
        }
        catch (ArgumentException)
        {
            return envelope;
        }
    }

    private static SmtpMessage[] ToSmtpMessages(IEnumerable<MimeMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);

        // A null in the list is named by its position before anything is sent (the list itself is not null).
        return [.. messages.Select(static (m, i) => (m ?? throw new ArgumentNullException(nameof(messages), $"messages[{i}] is null: every message of a batch must be a MimeMessage; nothing was sent.")).ToSmtpMessage())];
    }

    private static FormatOptions CreateDataFormat()
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos; // Bcc and Resent-Bcc: TopLevelFieldFilter (HiddenHeaders would hide them in attached messages too)
        return format;
    }
}
