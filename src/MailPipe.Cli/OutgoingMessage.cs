using MimeKit;

namespace MailPipe.Cli;

/// <summary>One message of the batch: its envelope and content, or why it cannot be sent.</summary>
internal sealed class OutgoingMessage : IDisposable
{
    private OutgoingMessage(int index, string? file)
    {
        Index = index;
        File = file;
    }

    /// <summary>The position in the batch, from 1.</summary>
    public int Index { get; }

    /// <summary>The file, or <see langword="null"/> for a built message.</summary>
    public string? File { get; }

    /// <summary>The reverse-path (empty for the null reverse-path <c>&lt;&gt;</c>).</summary>
    public string? ReversePath { get; private init; }

    /// <summary>The forward-paths.</summary>
    public IReadOnlyList<string> Recipients { get; private init; } = [];

    /// <summary>The content; <see langword="null"/> when <see cref="InputError"/> is set.</summary>
    public IMessageContent? Content { get; private init; }

    /// <summary>Why the message cannot be sent, or <see langword="null"/>.</summary>
    public string? InputError { get; private set; }

    /// <summary>The envelope, once <see cref="Prepare"/> has built it.</summary>
    public SmtpEnvelope? Envelope { get; private set; }

    /// <summary>
    /// Builds the envelope and opens the content's source (the file) before anything is sent; when either fails,
    /// sets <see cref="InputError"/> and releases the content.
    /// </summary>
    /// <returns>Whether the message can be sent.</returns>
    public bool Prepare()
    {
        if (InputError is not null)
        {
            return false;
        }

        try
        {
            Envelope = new SmtpEnvelope(ReversePath ?? string.Empty, Recipients.Select(r => new SmtpRecipient(r)));
        }
        catch (ArgumentException ex)
        {
            InputError = $"{File ?? "the message"}: not a usable envelope: {ex.Message}";
            Content?.Dispose();
            return false;
        }

        try
        {
            Content!.Open();
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            InputError = $"cannot read {File}: {ex.Message}";
            Content!.Dispose();
            return false;
        }
    }

    /// <summary>A message built from the options.</summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="builder">The message.</param>
    /// <returns>The message.</returns>
    public static OutgoingMessage Composed(int index, MessageBuilder builder) => new(index, file: null)
    {
        ReversePath = builder.From.Address,
        Recipients = [.. builder.To.Select(m => m.Address).Distinct(StringComparer.OrdinalIgnoreCase)],
        Content = new ComposedContent(builder),
    };

    /// <summary>
    /// Loads a message file: reads its header section, and takes the envelope from the options where given and from the
    /// header fields otherwise (<see cref="EnvelopeFromHeaders"/>); when the recipients come from the fields, the blind
    /// copies are removed from what is sent.
    /// </summary>
    /// <param name="index">The position, from 1.</param>
    /// <param name="path">The file.</param>
    /// <param name="reversePath">The <c>--from</c> address, or <see langword="null"/> to read it from the file.</param>
    /// <param name="recipients">The <c>--to</c> addresses, or empty to read them from the file.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The message, with <see cref="InputError"/> set when it cannot be sent.</returns>
    public static async Task<OutgoingMessage> LoadFileAsync(int index, string path, string? reversePath, IReadOnlyList<string> recipients, CancellationToken cancellationToken)
    {
        HeaderSection headers;
        try
        {
            var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 16 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
            await using (stream.ConfigureAwait(false))
            {
                headers = await HeaderSection.ReadAsync(stream, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            return Failed(index, path, reversePath, $"cannot read {path}: {ex.Message}");
        }

        var fromHeaders = recipients.Count == 0;
        if (reversePath is null || fromHeaders)
        {
            HeaderEnvelope envelope;
            try
            {
                envelope = EnvelopeFromHeaders.Extract(headers);
            }
            catch (FormatException ex)
            {
                return Failed(index, path, reversePath, $"{path}: {ex.Message}");
            }

            reversePath ??= envelope.ReversePath;
            if (fromHeaders)
            {
                recipients = envelope.Recipients;
            }
        }

        if (reversePath is null)
        {
            return Failed(index, path, null, $"{path}: no sender: the file has no From or Sender field with an address; give --from");
        }

        if (recipients.Count == 0)
        {
            return Failed(index, path, reversePath, $"{path}: no recipients: the file has no To, Cc or Bcc field with an address; give --to");
        }

        var removeBlindCopies = fromHeaders && headers.Fields.Any(EnvelopeFromHeaders.IsBlindCopy);
        var replacement = removeBlindCopies ? EnvelopeFromHeaders.RemoveBlindCopies(headers) : null;
        return new OutgoingMessage(index, path)
        {
            ReversePath = reversePath,
            Recipients = recipients,
            Content = new FileContent(path, replacement, headers.BodyOffset),
        };
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
    public void Dispose() => Content?.Dispose();
}
