using Microsoft.Win32.SafeHandles;
using MimeKit;

namespace MailPipe.Cli;

/// <summary>What every message of a run shares: the envelope options and the <c>--header</c> fields.</summary>
internal sealed record MessageDefaults
{
    /// <summary>The <c>--from</c> address (empty for <c>&lt;&gt;</c>), or <see langword="null"/> to read it from each file.</summary>
    public string? ReversePath { get; init; }

    /// <summary>The <c>--to</c> addresses, or empty to read them from each file.</summary>
    public IReadOnlyList<string> Recipients { get; init; } = [];

    /// <summary>The <c>--header</c> fields, put in front of each file's header section.</summary>
    public IReadOnlyList<HeaderArgument> Headers { get; init; } = [];

    /// <summary>The envelope parameters (<c>--notify</c>, <c>--ret</c>, <c>--envid</c>, <c>--requiretls</c>, <c>--smtputf8</c>).</summary>
    public EnvelopeSettings Envelope { get; init; } = new();
}

/// <summary>The MAIL and RCPT parameters given on the command line.</summary>
internal sealed record EnvelopeSettings
{
    /// <summary><c>--notify</c> (RFC 3461 §4.1), for every recipient.</summary>
    public DsnNotify Notify { get; init; }

    /// <summary><c>--ret</c> (RFC 3461 §4.3).</summary>
    public DsnReturn? Return { get; init; }

    /// <summary><c>--envid</c> (RFC 3461 §4.4).</summary>
    public string? EnvelopeId { get; init; }

    /// <summary><c>--requiretls</c> (RFC 8689).</summary>
    public bool RequireTls { get; init; }

    /// <summary><c>--smtputf8</c> (RFC 6531).</summary>
    public bool SmtpUtf8 { get; init; }

    /// <summary>The envelope for a sender and recipients.</summary>
    /// <param name="reversePath">The reverse-path.</param>
    /// <param name="recipients">The forward-paths.</param>
    /// <returns>The envelope.</returns>
    /// <exception cref="ArgumentException">An address or parameter cannot be sent.</exception>
    public SmtpEnvelope Create(string reversePath, IEnumerable<string> recipients) =>
        new(reversePath, recipients.Select(r => new SmtpRecipient(r) { Notify = Notify }))
        {
            Return = Return,
            EnvelopeId = EnvelopeId,
            RequireTls = RequireTls,
            SmtpUtf8 = SmtpUtf8,
        };
}

/// <summary>One message of the batch: its envelope and content, or why it cannot be sent.</summary>
internal sealed partial class OutgoingMessage : IDisposable
{
    /// <summary>Files up to this size are read whole, in one call; larger ones are streamed while they are sent.</summary>
    public const int SmallFileLimit = 1024 * 1024;

    /// <summary>The name that stands for standard input among the files.</summary>
    public const string StandardInputName = "-";

    /// <summary>This message's temporary file (<see cref="FromPipe"/>), deleted with it, or <see langword="null"/>.</summary>
    private string? _spool;

    private OutgoingMessage(int index, string? file)
    {
        Index = index;
        File = file;
    }

    /// <summary>The position in the batch, from 1.</summary>
    public int Index { get; }

    /// <summary>The file (<c>-</c> for standard input), or <see langword="null"/> for a built message.</summary>
    public string? File { get; }

    /// <summary>The reverse-path (empty for the null reverse-path <c>&lt;&gt;</c>).</summary>
    public string? ReversePath { get; private init; }

    /// <summary>The forward-paths.</summary>
    public IReadOnlyList<string> Recipients { get; private init; } = [];

    /// <summary>The content; <see langword="null"/> when <see cref="InputError"/> is set.</summary>
    public IMessageContent? Content { get; private set; }

    /// <summary>Why the message cannot be sent, or <see langword="null"/>.</summary>
    public string? InputError { get; private set; }

    /// <summary>The envelope; <see langword="null"/> when <see cref="InputError"/> is set.</summary>
    public SmtpEnvelope? Envelope { get; private set; }

    /// <summary>A message built from the options.</summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="builder">The message.</param>
    /// <param name="reversePath">The sender, as written (<see cref="MailboxArgument.AsWritten"/>).</param>
    /// <param name="recipients">The recipients, as written.</param>
    /// <param name="envelope">The envelope parameters.</param>
    /// <returns>The message.</returns>
    public static OutgoingMessage Composed(int index, MessageBuilder builder, string reversePath, IReadOnlyList<string> recipients, EnvelopeSettings envelope)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(envelope);
        var message = new OutgoingMessage(index, file: null)
        {
            ReversePath = reversePath,
            Recipients = [.. recipients.DistinctBy(HeaderFieldEnvelope.SameMailboxKey, StringComparer.OrdinalIgnoreCase)],
        };
        return message.Complete(new ComposedContent(builder), envelope);
    }

    /// <summary>
    /// Loads a message file: a small one is read whole in one call, a large one has its header section read and is
    /// opened again when its body is sent (so that a batch of many large files never holds them all open). The envelope comes from <paramref name="defaults"/> where
    /// given and from the header fields otherwise (<see cref="EnvelopeFromHeaders"/>); when the recipients come from
    /// the fields, the blind copies are removed from what is sent.
    /// </summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="path">The file.</param>
    /// <param name="defaults">The envelope options and <c>--header</c> fields.</param>
    /// <param name="regularOnly">Whether only a regular file is taken (one a directory or wildcard found): a FIFO, socket or device is then reported as not sent, checked on the opened descriptor and never waited for (<see cref="FileType.OpenRegular"/>).</param>
    /// <returns>The message, with <see cref="InputError"/> set when it cannot be sent.</returns>
    public static OutgoingMessage LoadFile(int index, string path, MessageDefaults defaults, bool regularOnly = false) => LoadFile(index, path, path, defaults, regularOnly);

    /// <summary>A file a directory or wildcard found that is not a regular file: not sent.</summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="file">The file.</param>
    /// <param name="reversePath">The sender, when known.</param>
    /// <param name="kind">What it is (<see cref="FileType.NotRegular"/>).</param>
    /// <returns>The message.</returns>
    public static OutgoingMessage NotRegular(int index, string file, string? reversePath, string kind) =>
        Failed(index, file, reversePath, $"{file}: {kind}, not a regular file: a directory or a wildcard sends regular files only (name it on its own to read it to its end)");

    /// <summary>Loads a message file under another name (a spooled pipe: <see cref="FromPipe"/>).</summary>
    private static OutgoingMessage LoadFile(int index, string path, string name, MessageDefaults defaults, bool regularOnly = false)
    {
        ArgumentNullException.ThrowIfNull(defaults);
        SafeFileHandle? handle = null;
        FileStream? file = null;
        try
        {
            string? kind = null;
            handle = regularOnly ? FileType.OpenRegular(path, out kind) : System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (handle is null)
            {
                return NotRegular(index, name, defaults.ReversePath, kind!);
            }

            file = new FileStream(handle, FileAccess.Read, bufferSize: 0);
            handle = null; // owned by the stream now
            if (!file.CanSeek)
            {
                // A pipe (a FIFO, a process substitution such as <(make-message), /dev/stdin): read to its end, as '-' is.
                return FromPipe(index, name, file, defaults);
            }

            var length = file.Length;
            if (length <= SmallFileLimit)
            {
                var bytes = new byte[length];
                ReadWhole(file.SafeFileHandle, bytes);
                return FromBytes(index, name, bytes, defaults);
            }

            var headers = HeaderSection.Read(file);
            var message = FromHeaders(index, name, headers, defaults, out var header);
            if (message.InputError is null)
            {
                message.Complete(new StreamedFileContent(path, length, header, headers.BodyOffset, System.IO.File.GetLastWriteTimeUtc(file.SafeFileHandle)), defaults.Envelope);
            }

            return message;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException && path.Contains('\uFFFD', StringComparison.Ordinal))
        {
            // .NET decodes file names as UTF-8, a byte that is not becomes U+FFFD, and such a name cannot be opened again.
            return Failed(index, path, defaults.ReversePath, $"cannot read {path}: its name is not valid UTF-8 (shown with \uFFFD), which .NET cannot open; rename it");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return Failed(index, name, defaults.ReversePath, $"cannot read {name}: {ex.Message}");
        }
        finally
        {
            file?.Dispose();
            handle?.Dispose();
        }
    }

    /// <summary>A message whose bytes are in memory (a small file, standard input).</summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="name">The file name, or <c>-</c>.</param>
    /// <param name="bytes">The message.</param>
    /// <param name="defaults">The envelope options and <c>--header</c> fields.</param>
    /// <returns>The message, with <see cref="InputError"/> set when it cannot be sent.</returns>
    public static OutgoingMessage FromBytes(int index, string name, byte[] bytes, MessageDefaults defaults)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        ArgumentNullException.ThrowIfNull(defaults);
        if (bytes.Length == 0)
        {
            // An empty file or standard input is a mistake (a failed pipe, a truncated file), never a message to send.
            return Failed(index, name, defaults.ReversePath, $"{name}: empty: there is no message to send");
        }

        var headers = HeaderSection.Parse(bytes);
        var message = FromHeaders(index, name, headers, defaults, out var header);
        if (message.InputError is not null)
        {
            return message;
        }

        ReadOnlyMemory<byte> content = bytes;
        if (!ReferenceEquals(header, headers.Bytes))
        {
            var joined = new byte[header.Length + bytes.Length - headers.BodyOffset];
            header.CopyTo(joined, 0);
            bytes.AsSpan(headers.BodyOffset).CopyTo(joined.AsSpan(header.Length));
            content = joined;
        }

        return message.Complete(new MemoryContent(content), defaults.Envelope);
    }

    /// <summary>A message that cannot be sent.</summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="file">The file, if any.</param>
    /// <param name="reversePath">The sender, when known.</param>
    /// <param name="error">Why.</param>
    /// <returns>The message.</returns>
    public static OutgoingMessage Failed(int index, string? file, string? reversePath, string error) =>
        new(index, file) { ReversePath = reversePath, InputError = error };

    /// <inheritdoc/>
    public void Dispose()
    {
        Content?.Dispose();
        if (_spool is not null)
        {
            DeleteSpool(_spool);
        }
    }

    private static void ReadWhole(SafeFileHandle handle, byte[] buffer)
    {
        var offset = 0;
        while (offset < buffer.Length)
        {
            var read = RandomAccess.Read(handle, buffer.AsSpan(offset), offset);
            if (read == 0)
            {
                throw new IOException("the file became shorter while it was read");
            }

            offset += read;
        }
    }

    private OutgoingMessage Complete(IMessageContent content, EnvelopeSettings settings)
    {
        try
        {
            Envelope = settings.Create(ReversePath ?? string.Empty, Recipients);
            Content = content;
        }
        catch (ArgumentException ex)
        {
            InputError = $"{File ?? "the message"}: not a usable envelope: {ex.Message}";
            content.Dispose();
        }

        return this;
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
    public long Size { get; private set; }

    /// <inheritdoc/>
    public SmtpMessage ToSmtpMessage(SmtpEnvelope envelope, SmtpCapabilities capabilities)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(capabilities);
        var encoding = _builder.ChooseEncoding(capabilities.Supports8BitMime);
        var bytes = _builder.Render(encoding);
        Size = bytes.Length;
        // The header section is 8-bit too when an address is not ASCII (RFC 6532: UTF-8 in the fields, with SMTPUTF8),
        // even when the body is plain ASCII: such a message goes as 8BITMIME when the server offers it.
        var eightBit = encoding == ContentEncoding.EightBit
            || (capabilities.Supports8BitMime && bytes.AsSpan().IndexOfAnyExceptInRange((byte)0, (byte)0x7F) >= 0);
        var body = eightBit ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit;
        return SmtpMessage.FromBytes(envelope with { Size = bytes.Length, Body = body }, bytes);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
    }
}
