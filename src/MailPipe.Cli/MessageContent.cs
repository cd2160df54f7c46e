using MimeKit;

namespace MailPipe.Cli;

/// <summary>The content of one message, opened after EHLO (so it can fit the server) and handed to <see cref="AsyncSmtpSession.SendAsync(SmtpMessage, CancellationToken)"/>.</summary>
internal interface IMessageContent : IDisposable
{
    /// <summary>Opens the content's source now, so that a file that cannot be opened is found before anything is sent.</summary>
    /// <exception cref="IOException">The file cannot be opened.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    void Open();

    /// <summary>Opens or renders the content and completes the envelope with what it implies (SIZE, BODY).</summary>
    /// <param name="envelope">The envelope's addresses.</param>
    /// <param name="capabilities">The server's extensions.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>The message to send.</returns>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    Task<SmtpMessage> OpenAsync(SmtpEnvelope envelope, SmtpCapabilities capabilities, CancellationToken cancellationToken);
}

/// <summary>
/// A message file, streamed as it is, or with its header section replaced by one without blind copies (the body
/// still streamed from the file). With 8-bit bytes and a server that offers 8BITMIME it is declared BODY=8BITMIME.
/// </summary>
internal sealed class FileContent : IMessageContent
{
    private readonly string _path;
    private readonly byte[]? _replacementHeader;
    private readonly int _bodyOffset;
    private FileStream? _file;
    private Stream? _stream;

    /// <summary>Creates the content of a file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="replacementHeader">The header section to send instead of the file's, or <see langword="null"/> to send the file unchanged.</param>
    /// <param name="bodyOffset">Where the file's body starts (used with <paramref name="replacementHeader"/>).</param>
    public FileContent(string path, byte[]? replacementHeader, int bodyOffset)
    {
        _path = path;
        _replacementHeader = replacementHeader;
        _bodyOffset = bodyOffset;
    }

    /// <inheritdoc/>
    public void Open() =>
        _file ??= new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);

    /// <inheritdoc/>
    public async Task<SmtpMessage> OpenAsync(SmtpEnvelope envelope, SmtpCapabilities capabilities, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        Open();
        var file = _file!;
        var eightBit = capabilities.Supports8BitMime && await HasEightBitAsync(file, cancellationToken).ConfigureAwait(false);
        long size;
        if (_replacementHeader is null)
        {
            file.Position = 0;
            size = file.Length;
            _stream = file;
        }
        else
        {
            file.Position = Math.Min(_bodyOffset, file.Length);
            size = _replacementHeader.Length + (file.Length - file.Position);
            _stream = new PrefixedStream(_replacementHeader, file);
        }

        var completed = envelope with { Size = size, Body = eightBit ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit };
        return SmtpMessage.FromStream(completed, _stream);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!ReferenceEquals(_stream, _file))
        {
            _stream?.Dispose();
        }

        _stream = null;
        _file?.Dispose();
        _file = null;
    }

    private static async Task<bool> HasEightBitAsync(FileStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        stream.Position = 0;
        int read;
        while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.AsSpan(0, read).IndexOfAnyExceptInRange((byte)0, (byte)0x7F) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>A message built from the options (<see cref="MessageBuilder"/>), rendered once the server's 8BITMIME support is known.</summary>
internal sealed class ComposedContent : IMessageContent
{
    private readonly MessageBuilder _builder;

    /// <summary>Creates the content.</summary>
    /// <param name="builder">The message.</param>
    public ComposedContent(MessageBuilder builder) => _builder = builder;

    /// <inheritdoc/>
    public void Open()
    {
    }

    /// <inheritdoc/>
    public Task<SmtpMessage> OpenAsync(SmtpEnvelope envelope, SmtpCapabilities capabilities, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        var encoding = _builder.ChooseEncoding(capabilities.Supports8BitMime);
        var bytes = _builder.Render(encoding);
        var body = encoding == ContentEncoding.EightBit ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        return Task.FromResult(SmtpMessage.FromBytes(envelope with { Size = bytes.Length, Body = body }, bytes));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
