using System.Buffers;
using System.IO.Pipelines;

namespace MailPipe;

/// <summary>What the content of one message may hold on the wire, decided before MAIL (RFC 6152, RFC 3030, RFC 5321 §4.5.2).</summary>
/// <param name="Body">The BODY parameter to declare (<see cref="SmtpBodyType.SevenBit"/> for none).</param>
/// <param name="NotSentReason">Why the message must not be sent at all (in-memory content the server cannot take), or <see langword="null"/>.</param>
/// <param name="Guard">What streamed content is checked for while it is sent.</param>
/// <param name="Refusal">Why the message must not be sent, as a whole sentence that says what to do (in-memory 8-bit content the envelope declared 7-bit), or <see langword="null"/>.</param>
internal readonly record struct SmtpContentPlan(SmtpBodyType Body, string? NotSentReason, SmtpContentGuard Guard, string? Refusal = null);

/// <summary>
/// The content rules: 8-bit octets only with <c>BODY=8BITMIME</c> (RFC 6152) or BINARYMIME; NUL octets only with
/// <c>BODY=BINARYMIME</c> over BDAT (RFC 3030 §3; RFC 2045 §2.8 excludes NUL from 8bit data). In-memory content is
/// checked whole before MAIL; streamed content is checked as it is sent (<see cref="SmtpContentGuard"/>).
/// </summary>
internal static class SmtpContentRules
{
    /// <summary>Decides the BODY parameter and the checks for one message.</summary>
    /// <param name="requested">The envelope's BODY choice.</param>
    /// <param name="inMemory">The content when it is in memory (scanned once), else <see langword="null"/> for a stream.</param>
    /// <param name="chunking">Whether the message goes with BDAT.</param>
    /// <param name="capabilities">The server's extensions.</param>
    /// <returns>The plan; <see cref="SmtpContentPlan.NotSentReason"/> set when the server lacks what the content needs.</returns>
    public static SmtpContentPlan Plan(SmtpBodyType requested, ReadOnlySequence<byte>? inMemory, bool chunking, SmtpCapabilities capabilities)
    {
        var eightBitOffered = capabilities.Supports8BitMime;
        var binaryOffered = chunking && capabilities.SupportsBinaryMime;
        if (requested == SmtpBodyType.BinaryMime)
        {
            return binaryOffered
                ? new(SmtpBodyType.BinaryMime, null, SmtpContentGuard.None)
                : new(SmtpBodyType.BinaryMime, "BINARYMIME with CHUNKING (RFC 3030)", SmtpContentGuard.None);
        }

        if (inMemory is not { } bytes)
        {
            // Streamed: declare 8BITMIME whenever offered (valid for 7-bit data too), else refuse 8-bit octets as they come.
            var declare8Bit = requested == SmtpBodyType.EightBitMime || (requested == SmtpBodyType.Auto && eightBitOffered);
            if (declare8Bit && !eightBitOffered)
            {
                return new(SmtpBodyType.EightBitMime, "8BITMIME (RFC 6152)", SmtpContentGuard.None);
            }

            // Refused because the envelope declared 7-bit, not because the server lacks 8BITMIME: the refusal says so.
            return declare8Bit
                ? new(SmtpBodyType.EightBitMime, null, new SmtpContentGuard(refuseEightBit: false, refuseNul: true))
                : new(SmtpBodyType.SevenBit, null, new SmtpContentGuard(refuseEightBit: true, refuseNul: true, declaredSevenBit: eightBitOffered));
        }

        var (eightBit, nul) = Scan(bytes);
        if (nul)
        {
            return requested == SmtpBodyType.Auto && binaryOffered
                ? new(SmtpBodyType.BinaryMime, null, SmtpContentGuard.None)
                : new(requested == SmtpBodyType.Auto ? SmtpBodyType.SevenBit : requested, "BINARYMIME with CHUNKING (RFC 3030 §3), needed for content with NUL octets", SmtpContentGuard.None);
        }

        if (requested == SmtpBodyType.EightBitMime || (eightBit && requested == SmtpBodyType.Auto))
        {
            return eightBitOffered
                ? new(SmtpBodyType.EightBitMime, null, SmtpContentGuard.None)
                : new(SmtpBodyType.EightBitMime, "8BITMIME (RFC 6152), needed for content with 8-bit octets", SmtpContentGuard.None);
        }

        return eightBit
            ? new(SmtpBodyType.SevenBit, null, SmtpContentGuard.None, SevenBitRefusal(bytes, eightBitOffered))
            : new(SmtpBodyType.SevenBit, null, SmtpContentGuard.None);
    }

    /// <summary>
    /// What to say of 8-bit content whose envelope declares 7-bit (<see cref="SmtpBodyType.SevenBit"/>): where the first
    /// 8-bit octet is, and what to do. The old text ("needs 8BITMIME, which the server does not offer") was false when
    /// the server offered it.
    /// </summary>
    public static string SevenBitRefusal(ReadOnlySequence<byte> content, bool eightBitOffered)
    {
        long offset = 0;
        byte octet = 0;
        foreach (var segment in content)
        {
            var at = segment.Span.IndexOfAnyInRange((byte)0x80, (byte)0xFF);
            if (at >= 0)
            {
                offset += at;
                octet = segment.Span[at];
                break;
            }

            offset += segment.Length;
        }

        return $"The message content has an 8-bit octet (0x{octet:X2}) at offset {offset} but the envelope declares 7-bit content (SmtpEnvelope.Body = SevenBit); it was not sent. "
            + (eightBitOffered ? DeclaredSevenBitAdvice : "The server does not offer 8BITMIME (RFC 6152) either: " + NoEightBitMimeAdvice);
    }

    /// <summary>What to do when 8-bit content meets a declaration of 7-bit on a server that offers 8BITMIME.</summary>
    internal const string DeclaredSevenBitAdvice = "The server offers 8BITMIME (RFC 6152): leave SmtpEnvelope.Body at Auto or set EightBitMime, or encode the content for 7-bit (quoted-printable or base64, RFC 2045).";

    /// <summary>What to do when 8-bit content meets a server without 8BITMIME.</summary>
    internal const string NoEightBitMimeAdvice = "Encode the content for 7-bit (quoted-printable or base64 parts, RFC 2045; RFC 2047 encoded-words in header fields), or send through a server that offers 8BITMIME.";

    /// <summary>
    /// Why a transaction stopped inside its content: <see cref="SmtpErrorCode.ExtensionNotSupported"/> for an octet the
    /// server cannot take (<see cref="SmtpContentRefusedException"/>), else <see cref="SmtpErrorCode.ContentReadFailed"/>
    /// for a failure of the caller's content source.
    /// </summary>
    /// <param name="exception">What stopped the content.</param>
    /// <param name="consequence">What the sender did about it, as a sentence.</param>
    public static SmtpException Failure(Exception exception, string consequence) => exception is SmtpContentRefusedException refused
        ? new SmtpException(refused.TooLarge ? SmtpErrorCode.MessageTooLarge : SmtpErrorCode.ExtensionNotSupported, $"{exception.Message} ({consequence})", exception)
        : new SmtpException(SmtpErrorCode.ContentReadFailed, $"Reading the message content failed: {exception.Message}; {consequence}", exception);

    /// <summary>
    /// The size SIZE declares for text content (RFC 1870 §3: the octets sent, CRLF pairs included, dot-stuffing and the
    /// final dot not): each bare CR or bare LF goes out as CRLF (one octet more), and a last line without its line end
    /// gets CRLF, as <see cref="SmtpDataEncoder"/> writes them.
    /// </summary>
    public static long DeclaredSize(ReadOnlySequence<byte> content)
    {
        var counter = default(WireSizeCounter);
        foreach (var segment in content)
        {
            counter.Add(segment.Span);
        }

        return counter.Total;
    }

    /// <summary>Whether the content has octets above 127, and NUL octets; one vectorised pass for the usual 7-bit content.</summary>
    public static (bool EightBit, bool Nul) Scan(ReadOnlySequence<byte> content)
    {
        bool eightBit = false, nul = false;
        foreach (var segment in content)
        {
            var span = segment.Span;
            while (!span.IsEmpty)
            {
                var at = span.IndexOfAnyExceptInRange((byte)1, (byte)0x7F);
                if (at < 0)
                {
                    break;
                }

                if (span[at] == 0)
                {
                    nul = true;
                }
                else
                {
                    eightBit = true;
                }

                if (eightBit && nul)
                {
                    return (true, true);
                }

                span = span[(at + 1)..];
            }
        }

        return (eightBit, nul);
    }
}

/// <summary>
/// Checks streamed content as it is sent: the first refused octet throws <see cref="SmtpContentRefusedException"/>,
/// before any byte of the piece that holds it is written, so that the sender aborts the transaction without ending the
/// data (BDAT: RSET between chunks; DATA: the connection is closed, never the final dot).
/// </summary>
internal struct SmtpContentGuard
{
    /// <summary>No check (in-memory content, checked before MAIL; BINARYMIME).</summary>
    public static SmtpContentGuard None => default;

    private readonly bool _refuseEightBit;
    private readonly bool _refuseNul;
    private readonly bool _declaredSevenBit;
    private long _offset;

    /// <summary>The server's SIZE (RFC 1870) for streamed content of unknown length; 0: none.</summary>
    private long _sizeLimit;

    /// <param name="refuseEightBit">Whether an octet over 127 is refused.</param>
    /// <param name="refuseNul">Whether NUL is refused.</param>
    /// <param name="declaredSevenBit">Whether 8-bit octets are refused because the envelope declared 7-bit although the server offers 8BITMIME (the refusal says so).</param>
    public SmtpContentGuard(bool refuseEightBit, bool refuseNul, bool declaredSevenBit = false)
    {
        _refuseEightBit = refuseEightBit;
        _refuseNul = refuseNul;
        _declaredSevenBit = declaredSevenBit;
        _offset = 0;
    }

    /// <summary>Whether anything is checked.</summary>
    public readonly bool IsActive => _refuseEightBit || _refuseNul || _sizeLimit > 0;

    /// <summary>This guard, also refusing content once it is longer than <paramref name="limit"/> octets (the raw octets: the wire adds CRLFs, never removes any).</summary>
    /// <param name="limit">The server's SIZE, above 0.</param>
    /// <returns>The guard with the limit.</returns>
    public readonly SmtpContentGuard WithSizeLimit(long limit)
    {
        var guard = this;
        guard._sizeLimit = limit;
        return guard;
    }

    /// <summary>Checks the next piece of the content.</summary>
    /// <exception cref="SmtpContentRefusedException">The piece holds an octet the server cannot take.</exception>
    public void Check(ReadOnlySpan<byte> piece)
    {
        if (!IsActive)
        {
            return;
        }

        if (_sizeLimit > 0 && _offset + piece.Length > _sizeLimit)
        {
            throw new SmtpContentRefusedException($"The message content is longer than the server's SIZE limit ({_sizeLimit} bytes, RFC 1870); the transaction was aborted before its end and nothing was delivered.") { TooLarge = true };
        }

        if (!_refuseEightBit && !_refuseNul)
        {
            _offset += piece.Length;
            return;
        }

        var at = _refuseEightBit ? piece.IndexOfAnyExceptInRange((byte)1, (byte)0x7F) : piece.IndexOf((byte)0);
        if (at >= 0 && (piece[at] == 0 ? _refuseNul : _refuseEightBit))
        {
            throw new SmtpContentRefusedException(piece[at], _offset + at, _declaredSevenBit);
        }

        if (at >= 0 && _refuseNul)
        {
            // An 8-bit octet that is allowed came first: look for NUL past it.
            var nul = piece.IndexOf((byte)0);
            if (nul >= 0)
            {
                throw new SmtpContentRefusedException(0, _offset + nul);
            }
        }

        _offset += piece.Length;
    }

    /// <summary>Checks every segment of a sequence.</summary>
    public void Check(in ReadOnlySequence<byte> pieces)
    {
        foreach (var segment in pieces)
        {
            Check(segment.Span);
        }
    }

    /// <summary>A reader that checks what it hands out (DATA with streamed content); the reader itself when nothing is checked.</summary>
    public readonly PipeReader Wrap(PipeReader reader) => IsActive ? new GuardedPipeReader(reader, this) : reader;

    private sealed class GuardedPipeReader(PipeReader inner, SmtpContentGuard guard) : PipeReader
    {
        private SmtpContentGuard _guard = guard;
        private ReadOnlySequence<byte> _last;
        private long _checkedUpTo;
        private long _consumed;

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            _consumed += _last.Slice(0, consumed).Length;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override async ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var result = await inner.ReadAsync(cancellationToken).ConfigureAwait(false);
            CheckNew(result.Buffer);
            return result;
        }

        public override bool TryRead(out ReadResult result)
        {
            if (!inner.TryRead(out result))
            {
                return false;
            }

            CheckNew(result.Buffer);
            return true;
        }

        /// <summary>Checks the bytes of <paramref name="buffer"/> not checked yet (a reader hands out unconsumed bytes again).</summary>
        private void CheckNew(ReadOnlySequence<byte> buffer)
        {
            _last = buffer;
            var alreadyChecked = _checkedUpTo - _consumed;
            if (alreadyChecked < buffer.Length)
            {
                _guard.Check(buffer.Slice(Math.Max(0, alreadyChecked)));
                _checkedUpTo = _consumed + buffer.Length;
            }
        }
    }
}

/// <summary>
/// Streamed content held an octet the server cannot take (8-bit without 8BITMIME, RFC 6152; NUL without BINARYMIME,
/// RFC 3030 §3), or streamed content of unknown length grew longer than the server's SIZE (RFC 1870 §4; the result's
/// exception then has <see cref="SmtpErrorCode.MessageTooLarge"/>): the transaction was aborted before its end, so nothing of the message was delivered. Reaches the
/// caller as the inner exception of the <see cref="SmtpSendResult"/>'s exception (outcome NotSent).
/// </summary>
public sealed class SmtpContentRefusedException : Exception
{
    /// <summary>Creates the exception for the refused octet.</summary>
    /// <param name="octet">The octet's value.</param>
    /// <param name="offset">Its offset in the content, in bytes from 0.</param>
    public SmtpContentRefusedException(byte octet, long offset)
        : this(octet, offset, declaredSevenBit: false)
    {
    }

    /// <summary>Creates the exception for the refused octet, saying why an 8-bit one was refused.</summary>
    /// <param name="octet">The octet's value.</param>
    /// <param name="offset">Its offset in the content, in bytes from 0.</param>
    /// <param name="declaredSevenBit">Whether the envelope declared 7-bit content to a server that offers 8BITMIME.</param>
    internal SmtpContentRefusedException(byte octet, long offset, bool declaredSevenBit)
        : base(octet == 0
            ? $"The message content has a NUL octet at offset {offset}; NUL is sent only with BODY=BINARYMIME over BDAT (RFC 3030 §3), so the transaction was aborted before its end and nothing was delivered."
            : declaredSevenBit
                ? $"The message content has an 8-bit octet (0x{octet:X2}) at offset {offset} but the envelope declares 7-bit content (SmtpEnvelope.Body = SevenBit), so the transaction was aborted before its end and nothing was delivered. {SmtpContentRules.DeclaredSevenBitAdvice}"
                : $"The message content has an 8-bit octet (0x{octet:X2}) at offset {offset} and the server does not offer 8BITMIME (RFC 6152), so the transaction was aborted before its end and nothing was delivered. {SmtpContentRules.NoEightBitMimeAdvice}")
    {
        Octet = octet;
        Offset = offset;
    }

    /// <summary>Creates the exception with a message.</summary>
    public SmtpContentRefusedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">The message.</param>
    public SmtpContentRefusedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public SmtpContentRefusedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Whether the content was refused for its length (the server's SIZE), not for an octet.</summary>
    internal bool TooLarge { get; init; }

    /// <summary>The refused octet: 0 for NUL, else a value from 0x80 to 0xFF (0 when the content was too long).</summary>
    public byte Octet { get; }

    /// <summary>The octet's offset in the message content, in bytes from 0.</summary>
    public long Offset { get; }
}

/// <summary>Counts the size SIZE declares for text content piece by piece, split anywhere (see <see cref="SmtpContentRules.DeclaredSize"/>).</summary>
internal struct WireSizeCounter
{
    private long _length, _extra;
    private bool _lastWasCr, _lineOpen;

    /// <summary>The size counted so far, as if the content ended here.</summary>
    public readonly long Total => _length + _extra + (_lineOpen ? 2 : 0);

    /// <summary>Counts the next piece.</summary>
    public void Add(ReadOnlySpan<byte> span)
    {
        for (var i = span.IndexOfAny((byte)'\r', (byte)'\n'); i >= 0;)
        {
            // A bare CR or LF goes out as CRLF, one octet more; an LF right after a CR makes that CR a pair: neither does.
            _extra += span[i] == '\r' ? 1 : (i > 0 ? span[i - 1] == '\r' : _lastWasCr) ? -1 : 1;
            var next = span[(i + 1)..].IndexOfAny((byte)'\r', (byte)'\n');
            i = next < 0 ? -1 : i + 1 + next;
        }

        if (!span.IsEmpty)
        {
            (_lastWasCr, _lineOpen) = (span[^1] == '\r', span[^1] is not ((byte)'\r' or (byte)'\n'));
        }

        _length += span.Length;
    }
}
