using MimeKit;

namespace MailPipe.Cli;

/// <summary>The checked options of <c>mailpipe send</c>.</summary>
internal sealed class SendOptions : IDisposable
{
    /// <summary>The folder the embedded server saves to when none is given.</summary>
    public const string DefaultSaveDirectory = "./mailpipe-outbox";

    /// <summary>The message files, in order (directories and wildcards already expanded); empty to build a message from <see cref="FromMailbox"/>, <see cref="To"/>, <see cref="Subject"/> and <see cref="Body"/>.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    /// <summary>
    /// The positions in <see cref="Files"/> that a directory or wildcard found, each with what it was when not a regular
    /// file (a FIFO, a socket, a device: reported, never opened), or <see langword="null"/>: a regular file then, opened
    /// without waiting and checked again on its descriptor, as it may have been replaced since.
    /// </summary>
    public IReadOnlyDictionary<int, string?> FoundFiles { get; init; } = new Dictionary<int, string?>();

    /// <summary>Whether <c>--from</c> was given (its mailbox may still be <see langword="null"/>: the null reverse-path).</summary>
    public bool FromGiven { get; init; }

    /// <summary>The <c>--from</c> mailbox; <see langword="null"/> for the null reverse-path or when not given.</summary>
    public MailboxAddress? FromMailbox { get; init; }

    /// <summary>The <c>--to</c> mailboxes, in order; empty when not given.</summary>
    public IReadOnlyList<MailboxAddress> To { get; init; } = [];

    /// <summary>The envelope address of <see cref="FromMailbox"/> as written (<see cref="MailboxArgument.AsWritten"/>); <see langword="null"/> to take the mailbox's.</summary>
    public string? FromEnvelopeAddress { get; init; }

    /// <summary>The envelope addresses of <see cref="To"/> as written, in the same order; empty to take the mailboxes'.</summary>
    public IReadOnlyList<string> ToEnvelopeAddresses { get; init; } = [];

    /// <summary>The recipients for the envelope: <see cref="ToEnvelopeAddresses"/>, or the addresses of <see cref="To"/>.</summary>
    public IReadOnlyList<string> Recipients => ToEnvelopeAddresses.Count == To.Count ? ToEnvelopeAddresses : [.. To.Select(m => m.Address)];

    /// <summary>The subject of a built message.</summary>
    public string? Subject { get; init; }

    /// <summary>The body of a built message.</summary>
    public string? Body { get; init; }

    /// <summary>The server, TLS, EHLO name, timeout and transcript settings.</summary>
    public required ConnectionSettings Connection { get; init; }

    /// <summary>The authentication to run after EHLO (and STARTTLS), or <see langword="null"/> for none.</summary>
    public AuthSettings? Auth { get; init; }

    /// <summary>Whether PLAIN, LOGIN, XOAUTH2 and OAUTHBEARER may send the secret without TLS.</summary>
    public bool AllowCleartextAuthentication { get; init; }

    /// <summary>Where the embedded server saves messages.</summary>
    public string SaveDirectory { get; init; } = DefaultSaveDirectory;

    /// <summary>Whether to print one JSON object per message and a summary object.</summary>
    public bool Json { get; init; }

    /// <summary>The <c>--header</c> fields.</summary>
    public IReadOnlyList<HeaderArgument> Headers { get; init; } = [];

    /// <summary>The <c>--attach</c> files.</summary>
    public IReadOnlyList<string> Attachments { get; init; } = [];

    /// <summary>Where <c>--quit-after</c> ends the session.</summary>
    public QuitAfter QuitAfter { get; init; }

    /// <summary><c>--reconnect</c>: how many new connections in a row may decide no message after the server ended a session at a limit; 0 for one connection.</summary>
    public int Reconnects { get; init; } = BatchSender.DefaultReconnects;

    /// <summary><c>--max-per-connection</c>: the most messages per connection; 0 for no limit.</summary>
    public int MaxPerConnection { get; init; }

    /// <summary>The MAIL and RCPT parameters.</summary>
    public EnvelopeSettings Envelope { get; init; } = new();

    /// <summary>The reverse-path given by <c>--from</c>: its address, empty for <c>&lt;&gt;</c>, <see langword="null"/> when not given.</summary>
    public string? FromAddress => FromGiven ? FromEnvelopeAddress ?? FromMailbox?.Address ?? string.Empty : null;

    /// <inheritdoc/>
    public void Dispose() => Connection.Dispose();
}
