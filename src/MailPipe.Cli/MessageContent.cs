namespace MailPipe.Cli;

/// <summary>The content of one message, read or built before the connection is made and handed to MailPipe once the server's extensions are known.</summary>
internal interface IMessageContent : IDisposable
{
    /// <summary>The size in bytes as read (before SMTP's line-end and dot encoding), when known.</summary>
    long Size { get; }

    /// <summary>Makes the message to send and completes the envelope with what the content implies (SIZE, BODY).</summary>
    /// <param name="envelope">The envelope's addresses and parameters.</param>
    /// <param name="capabilities">The server's extensions.</param>
    /// <returns>The message to send.</returns>
    SmtpMessage ToSmtpMessage(SmtpEnvelope envelope, SmtpCapabilities capabilities);
}

/// <summary>
/// A message held in memory: a small file read in one call, standard input, or a message built from the options. Its
/// 8-bit bytes are known, so it is declared <c>BODY=8BITMIME</c> exactly when it needs it and the server offers it.
/// </summary>
internal sealed class MemoryContent : IMessageContent
{
    private readonly ReadOnlyMemory<byte> _bytes;
    private readonly bool _eightBit;
    private readonly bool _eightBitHeader;

    /// <summary>Creates the content.</summary>
    /// <param name="bytes">The message.</param>
    public MemoryContent(ReadOnlyMemory<byte> bytes)
    {
        _bytes = bytes;
        var first = bytes.Span.IndexOfAnyExceptInRange((byte)0, (byte)0x7F);
        _eightBit = first >= 0;
        _eightBitHeader = _eightBit && first < HeaderEnd(bytes.Span);
    }

    /// <inheritdoc/>
    public long Size => _bytes.Length;

    /// <summary>The bytes.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <inheritdoc/>
    public SmtpMessage ToSmtpMessage(SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        // 8-bit content to a server without 8BITMIME is not sent; asking for 8BITMIME lets MailPipe say that the server
        // lacks it (BODY=7BIT made it "the content has 8-bit octets but BODY is 7BIT", a choice the user never made).
        var body = _eightBit ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        return SmtpMessage.FromBytes(envelope with { Size = WireSize(_bytes.Span), Body = body, SmtpUtf8 = envelope.SmtpUtf8 || (_eightBitHeader && capabilities.SupportsSmtpUtf8) }, _bytes);
    }

    /// <summary>Where the header section ends: at its empty line (CRLF or LF), or at the end of a message without one.</summary>
    internal static int HeaderEnd(ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith("\n"u8) || bytes.StartsWith("\r\n"u8))
        {
            return 0;
        }

        var lf = bytes.IndexOf("\n\n"u8);
        var crlf = bytes.IndexOf("\n\r\n"u8);
        return lf < 0 ? (crlf < 0 ? bytes.Length : crlf) : (crlf < 0 ? lf : Math.Min(lf, crlf));
    }

    /// <summary>
    /// The message's size as SIZE declares it (RFC 1870 §3: the octets sent after 354, CRLF pairs included, not the
    /// dot-stuffing nor the final dot line): each bare LF or bare CR goes out as CRLF (one more octet), and a message
    /// that does not end a line gets its CRLF. The file's length alone made an LF file near a server's limit pass
    /// SIZE and be refused only after its data.
    /// </summary>
    internal static long WireSize(ReadOnlySpan<byte> bytes)
    {
        long size = bytes.Length;
        for (var i = bytes.IndexOfAny((byte)'\r', (byte)'\n'); i >= 0;)
        {
            if (bytes[i] == '\r' && i + 1 < bytes.Length && bytes[i + 1] == '\n')
            {
                i++; // a CRLF pair: as it is
            }
            else
            {
                size++;
            }

            var next = bytes[(i + 1)..].IndexOfAny((byte)'\r', (byte)'\n');
            i = next < 0 ? -1 : i + 1 + next;
        }

        return bytes.IsEmpty || bytes[^1] is (byte)'\n' or (byte)'\r' ? size : size + 2;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}

/// <summary>
/// A large file, streamed after a header section held in memory (the file's own, or one with <c>--header</c> fields in
/// front or without Bcc). The file is opened again when its body is first read and closed at its end, so that a batch
/// of many large files holds at most the ones being sent open (the process's open-file limit is often 256 or 1,024). With
/// a server that offers 8BITMIME it is not scanned beforehand: it is declared <c>BODY=8BITMIME</c>, which RFC 6152
/// allows for 7-bit content too; for one that does not, it is scanned just before its MAIL.
/// </summary>
internal sealed class StreamedFileContent : IMessageContent
{
    private readonly string _path;
    private readonly long _length;
    private readonly byte[] _header;
    private readonly long _bodyOffset;
    private readonly DateTime _lastWrite;
    private Stream? _stream;

    /// <summary>Creates the content.</summary>
    /// <param name="path">The file.</param>
    /// <param name="length">Its length when its header section was read.</param>
    /// <param name="header">The header section to send (with its empty line, when the file has one).</param>
    /// <param name="bodyOffset">Where the body starts in the file.</param>
    /// <param name="lastWrite">Its last write time (UTC) when its header section was read.</param>
    public StreamedFileContent(string path, long length, byte[] header, long bodyOffset, DateTime lastWrite)
    {
        _path = path;
        _length = length;
        _header = header;
        _bodyOffset = bodyOffset;
        _lastWrite = lastWrite;
        Size = header.Length + Math.Max(0, length - bodyOffset);
    }

    /// <inheritdoc/>
    public long Size { get; }

    /// <inheritdoc/>
    public SmtpMessage ToSmtpMessage(SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        envelope = envelope with
        {
            Size = Size,
            Body = capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit,
            // A header section in UTF-8 (RFC 6532) is an internationalized message: SMTPUTF8 when offered (RFC 6531 §3.4).
            SmtpUtf8 = envelope.SmtpUtf8 || (capabilities.SupportsSmtpUtf8 && _header.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0),
        };

        // Made just before its MAIL (not when the batch takes it, up to a window of transactions earlier): a file that
        // changed since it was read, or that has 8-bit octets for a server without 8BITMIME, is then not sent before
        // anything of it is written, and the batch goes on. Found only while its data was written, with DATA the
        // connection had to be closed, and the rest of the batch with it.
        return SmtpMessage.ForConnection(envelope, _ =>
        {
            var file = new FileInfo(_path);
            if (!file.Exists || file.Length != _length || file.LastWriteTimeUtc != _lastWrite)
            {
                throw new IOException($"{_path} changed after it was read (another length or write time)");
            }

            // BODY=8BITMIME to a server without it: MailPipe says so and sends nothing of this message.
            var message = envelope.Body == SmtpBodyType.SevenBit && HasEightBitOctets() ? envelope with { Body = SmtpBodyType.EightBitMime } : envelope;
            _stream?.Dispose();
            _stream = new PrefixedStream(_header, new FileBody(_path, Math.Min(_bodyOffset, _length), _length, _lastWrite));
            return SmtpMessage.FromStream(message, _stream);
        });
    }

    /// <summary>Whether the header section or the body has an octet above 127: one read of the file, only for a server without 8BITMIME.</summary>
    private bool HasEightBitOctets()
    {
        if (_header.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0)
        {
            return true;
        }

        using var file = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
        file.Position = Math.Min(_bodyOffset, _length);
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            if (buffer.AsSpan(0, read).IndexOfAnyInRange((byte)0x80, (byte)0xFF) >= 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <inheritdoc/>
    public void Dispose() => _stream?.Dispose();

    /// <summary>
    /// The body of the file: opened on the first read (from <c>offset</c>), closed once its end is read or at disposal.
    /// A file that is no longer the one whose header section was read (another length or write time) fails the read:
    /// the message is not sent, rather than sent as a mix of two files. Neither is one cut short while it is sent (its
    /// end comes before the length it had: the read fails, and MailPipe closes the connection without the final dot,
    /// so that the server discards the part it read); nothing past that length is sent (a file that grows meanwhile).
    /// </summary>
    private sealed class FileBody(string path, long offset, long length, DateTime lastWrite) : ReadOnlyStream
    {
        private FileStream? _file;
        private bool _ended;
        private long _remaining = Math.Max(0, length - offset);

        public override int Read(Span<byte> buffer) =>
            Open() is { } file ? Counted(file.Read(buffer[..Wanted(buffer.Length)]), buffer.Length) : 0;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Open() is { } file ? Counted(await file.ReadAsync(buffer[..Wanted(buffer.Length)], cancellationToken).ConfigureAwait(false), buffer.Length) : 0;

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _file?.Dispose();
                _file = null;
            }

            base.Dispose(disposing);
        }

        private FileStream? Open()
        {
            if (_file is null && !_ended)
            {
                _file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
                if (_file.Length != length || File.GetLastWriteTimeUtc(_file.SafeFileHandle) != lastWrite)
                {
                    _file.Dispose();
                    _file = null;
                    throw new IOException($"{path} changed after it was read, before its body was sent; not sent");
                }

                _file.Position = offset;
            }

            return _file;
        }

        /// <summary>How much of a read of <paramref name="requested"/> bytes to ask of the file: no more than the length it had.</summary>
        private int Wanted(int requested) => (int)Math.Min(requested, _remaining);

        /// <summary>Counts a read; at the end of the file closes it (the rest of the batch may need the handle), and fails when that end came too soon.</summary>
        private int Counted(int read, int requested)
        {
            if (read == 0 && requested > 0 && _file is not null)
            {
                _file.Dispose();
                _file = null;
                if (_remaining > 0)
                {
                    throw new IOException($"{path} is shorter than when it was read ({_remaining} bytes missing): it changed while it was sent; not sent");
                }

                _ended = true;
            }

            _remaining -= read;
            return read;
        }
    }
}
