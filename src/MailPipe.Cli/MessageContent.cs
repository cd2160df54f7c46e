using MimeKit;

namespace MailPipe.Cli;

/// <summary>What the sender learns from the content before MAIL FROM: its size and whether it holds 8-bit bytes.</summary>
/// <param name="Size">The size in bytes (for the SIZE parameter, RFC 1870).</param>
/// <param name="EightBit">Whether any byte is above 127 (for BODY=8BITMIME, RFC 6152).</param>
internal readonly record struct ContentInfo(long Size, bool EightBit);

/// <summary>The content of one message, opened after EHLO (so it can fit the server) and sent after DATA returned 354.</summary>
internal interface IMessageContent : IDisposable
{
    /// <summary>Opens or renders the content; called before MAIL FROM, so a failure here leaves no transaction open.</summary>
    /// <param name="capabilities">The server's extensions.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>The size and 8-bit flag.</returns>
    /// <exception cref="IOException">The file cannot be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened.</exception>
    Task<ContentInfo> OpenAsync(SmtpCapabilities capabilities, CancellationToken cancellationToken);

    /// <summary>Sends the content and the end of data; returns the server's reply.</summary>
    /// <param name="session">A session whose DATA returned 354.</param>
    /// <param name="cancellationToken">Cancels.</param>
    /// <returns>The reply to the end of data.</returns>
    Task<SmtpReply> SendAsync(AsyncSmtpSession session, CancellationToken cancellationToken);
}

/// <summary>
/// A message file sent as it is (<see cref="AsyncSmtpSession.SendMessageDataAsync(Stream, CancellationToken)"/>), or
/// with its header section replaced by one without blind copies (the body still streamed from the file).
/// </summary>
internal sealed class FileContent : IMessageContent
{
    private readonly string _path;
    private readonly byte[]? _replacementHeader;
    private readonly int _bodyOffset;
    private FileStream? _stream;

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
    public async Task<ContentInfo> OpenAsync(SmtpCapabilities capabilities, CancellationToken cancellationToken)
    {
        _stream?.Dispose();
        _stream = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
        var size = _replacementHeader is null ? _stream.Length : _replacementHeader.Length + Math.Max(0, _stream.Length - _bodyOffset);
        var eightBit = capabilities.Supports8BitMime && await HasEightBitAsync(_stream, cancellationToken).ConfigureAwait(false);
        return new ContentInfo(size, eightBit);
    }

    /// <inheritdoc/>
    public async Task<SmtpReply> SendAsync(AsyncSmtpSession session, CancellationToken cancellationToken)
    {
        var stream = _stream ?? throw new InvalidOperationException("OpenAsync first.");
        if (_replacementHeader is null)
        {
            stream.Position = 0;
            return await session.SendMessageDataAsync(stream, cancellationToken).ConfigureAwait(false);
        }

        await session.WriteMessageDataAsync(_replacementHeader, cancellationToken).ConfigureAwait(false);
        stream.Position = Math.Min(_bodyOffset, stream.Length);
        return await session.SendMessageDataAsync(stream, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stream?.Dispose();
        _stream = null;
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
    private byte[]? _bytes;

    /// <summary>Creates the content.</summary>
    /// <param name="builder">The message.</param>
    public ComposedContent(MessageBuilder builder) => _builder = builder;

    /// <summary>The bytes rendered by the last <see cref="OpenAsync"/>.</summary>
    public byte[]? RenderedBytes => _bytes;

    /// <inheritdoc/>
    public Task<ContentInfo> OpenAsync(SmtpCapabilities capabilities, CancellationToken cancellationToken)
    {
        var encoding = _builder.ChooseEncoding(capabilities.Supports8BitMime);
        _bytes = _builder.Render(encoding);
        return Task.FromResult(new ContentInfo(_bytes.Length, encoding == ContentEncoding.EightBit));
    }

    /// <inheritdoc/>
    public Task<SmtpReply> SendAsync(AsyncSmtpSession session, CancellationToken cancellationToken) =>
        session.SendMessageDataAsync(_bytes ?? throw new InvalidOperationException("OpenAsync first."), cancellationToken);

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
