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

    /// <summary>Creates the content.</summary>
    /// <param name="bytes">The message.</param>
    public MemoryContent(ReadOnlyMemory<byte> bytes)
    {
        _bytes = bytes;
        _eightBit = bytes.Span.IndexOfAnyExceptInRange((byte)0, (byte)0x7F) >= 0;
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
        var body = _eightBit && capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        return SmtpMessage.FromBytes(envelope with { Size = _bytes.Length, Body = body }, _bytes);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}

/// <summary>
/// A large file, streamed from the handle opened when its header section was read (it is never opened twice), after
/// a header section held in memory (the file's own, or one with <c>--header</c> fields in front or without Bcc). It is
/// not scanned beforehand: with a server that offers 8BITMIME it is declared <c>BODY=8BITMIME</c>, which RFC 6152
/// allows for 7-bit content too.
/// </summary>
internal sealed class StreamedFileContent : IMessageContent
{
    private readonly FileStream _file;
    private readonly byte[] _header;
    private readonly long _bodyOffset;
    private Stream? _stream;

    /// <summary>Creates the content; it owns <paramref name="file"/>.</summary>
    /// <param name="file">The open file.</param>
    /// <param name="header">The header section to send (with its empty line, when the file has one).</param>
    /// <param name="bodyOffset">Where the body starts in the file.</param>
    public StreamedFileContent(FileStream file, byte[] header, long bodyOffset)
    {
        _file = file;
        _header = header;
        _bodyOffset = bodyOffset;
        Size = header.Length + Math.Max(0, file.Length - bodyOffset);
    }

    /// <inheritdoc/>
    public long Size { get; }

    /// <inheritdoc/>
    public SmtpMessage ToSmtpMessage(SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        _file.Position = Math.Min(_bodyOffset, _file.Length);
        _stream = new PrefixedStream(_header, _file);
        var body = capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        return SmtpMessage.FromStream(envelope with { Size = Size, Body = body }, _stream);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stream?.Dispose();
        _file.Dispose();
    }
}
