using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net.Sockets;
using MimeKit;

namespace MailPipe.Cli;

/// <summary>Loading the messages and checking send's option values (addresses, NOTIFY, combinations).</summary>
internal sealed partial class SendCommand
{
    /// <summary>After an interrupted read: the messages read once it ends are disposed (their open files closed); a failed read has nothing to dispose.</summary>
    private static async Task DisposeWhenLoadedAsync(Task<List<OutgoingMessage>> loading)
    {
        List<OutgoingMessage> messages;
        try
        {
            messages = await loading.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }

        messages.ForEach(static m => m.Dispose());
    }

    private static List<OutgoingMessage> LoadMessages(SendOptions options, CliEnvironment environment)
    {
        if (options.Files.Count == 0)
        {
            var attachments = new List<Attachment>(options.Attachments.Count);
            var room = MaxAttachmentBytes;
            foreach (var path in options.Attachments)
            {
                var content = ReadAttachment(path, room);
                room -= content.Length;
                attachments.Add(new Attachment(Path.GetFileName(path), content));
            }

            var builder = new MessageBuilder(options.FromMailbox!, options.To, options.Subject, options.Body, DateTimeOffset.Now)
            {
                Headers = options.Headers,
                Attachments = attachments,
            };
            return [OutgoingMessage.Composed(1, builder, options.FromAddress!, options.Recipients, options.Envelope)];
        }

        var defaults = new MessageDefaults
        {
            ReversePath = options.FromAddress,
            Recipients = [.. options.Recipients.DistinctBy(HeaderFieldEnvelope.SameMailboxKey, StringComparer.OrdinalIgnoreCase)],
            Headers = options.Headers,
            Envelope = options.Envelope,
        };
        var messages = new OutgoingMessage[options.Files.Count];
        OutgoingMessage Load(int i) => options.Files[i] == OutgoingMessage.StandardInputName
            ? LoadStandardInput(i + 1, environment, defaults)
            : !options.FoundFiles.TryGetValue(i, out var kind) ? OutgoingMessage.LoadFile(i + 1, options.Files[i], defaults)
            : kind is not null ? OutgoingMessage.NotRegular(i + 1, options.Files[i], defaults.ReversePath, kind)
            : OutgoingMessage.LoadFile(i + 1, options.Files[i], defaults, regularOnly: true);
        if (messages.Length >= ParallelLoadThreshold && System.Environment.ProcessorCount > 1)
        {
            // Many small files: read on every core (each file is still opened once and read in one call).
            Parallel.For(0, messages.Length, new ParallelOptions { MaxDegreeOfParallelism = System.Environment.ProcessorCount }, i => messages[i] = Load(i));
        }
        else
        {
            for (var i = 0; i < messages.Length; i++)
            {
                messages[i] = Load(i);
            }
        }

        return [.. messages];
    }

    /// <summary>
    /// Reads an <c>--attach</c> file to its end, at most <paramref name="limit"/> bytes: the option's check sums the
    /// sizes the files report, but a device reports none and never ends (<c>/dev/zero</c>), and a pipe or a file being
    /// written can deliver more; read whole, such a file ended the run with an unhandled OutOfMemoryException.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="limit">The most it may hold: what is left of <see cref="MaxAttachmentBytes"/>.</param>
    /// <returns>Its bytes.</returns>
    /// <exception cref="IOException">It cannot be opened (the message names <c>--attach</c> and the file), or holds more than <paramref name="limit"/> bytes.</exception>
    internal static byte[] ReadAttachment(string path, long limit)
    {
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The runtime's message alone ("No such device or address : '/x'") did not say which option it was about.
            throw new IOException($"--attach {path}: cannot read it: {ex.Message}; nothing was sent", ex);
        }

        using var owned = file;
        var expected = file.CanSeek ? Math.Min(file.Length, limit) : 0;
        using var content = new MemoryStream((int)Math.Min(expected, Array.MaxLength));
        var buffer = new byte[64 * 1024];
        int read;
        while ((read = file.Read(buffer)) > 0)
        {
            if (content.Length + read > limit)
            {
                throw new IOException(string.Create(CultureInfo.InvariantCulture, $"--attach {path}: the attachments go past {MaxAttachmentBytes:N0} bytes (1 GiB), the most a built message holds in memory (a device such as /dev/zero, or a pipe that does not end, cannot be attached); nothing was sent"));
            }

            content.Write(buffer, 0, read);
        }

        return content.Length == content.Capacity ? content.GetBuffer() : content.ToArray();
    }

    /// <summary>The message on standard input; one that cannot be read (closed, an I/O error) is not sent, as an unreadable file.</summary>
    private static OutgoingMessage LoadStandardInput(int index, CliEnvironment environment, MessageDefaults defaults)
    {
        try
        {
            using var input = environment.OpenInput();
            return OutgoingMessage.FromPipe(index, OutgoingMessage.StandardInputName, input, defaults);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return OutgoingMessage.Failed(index, OutgoingMessage.StandardInputName, defaults.ReversePath, $"-: cannot read standard input: {ex.Message}");
        }
    }

    /// <summary>From this many files on, they are read in parallel.</summary>
    private const int ParallelLoadThreshold = 64;

    private static void CheckAddress(OptionResult result, string option, bool allowNullPath, bool forwardPath)
    {
        foreach (var token in result.Tokens)
        {
            if (!MailboxArgument.TryParse(token.Value, allowNullPath, out _, out _, out var problem, forwardPath))
            {
                result.AddError($"{option}: '{Shown(token.Value)}' {problem}");
            }
        }
    }

    /// <summary>A value as an error message shows it: line breaks and NUL escaped, other control characters replaced.</summary>
    private static string Shown(string value) => TerminalText.Sanitize(
        value.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal).Replace("\0", "\\0", StringComparison.Ordinal));

    private static readonly string[] QuitSteps = ["connect", "banner", "ehlo", "tls", "auth", "mail", "rcpt"];

    private static bool TryParseNotify(string value, out DsnNotify notify)
    {
        notify = DsnNotify.Default;
        foreach (var word in value.Split(',', StringSplitOptions.TrimEntries))
        {
            notify |= word.ToUpperInvariant() switch
            {
                "NEVER" => DsnNotify.Never,
                "SUCCESS" => DsnNotify.Success,
                "FAILURE" => DsnNotify.Failure,
                "DELAY" => DsnNotify.Delay,
                _ => (DsnNotify)(-1),
            };
        }

        return notify != DsnNotify.Default && (int)notify > 0 && (notify == DsnNotify.Never || !notify.HasFlag(DsnNotify.Never));
    }

    /// <summary>The mailbox of a checked address value; <see langword="null"/> for the null reverse-path.</summary>
    private static MailboxAddress? ToMailbox(string value, bool forwardPath)
    {
        _ = MailboxArgument.TryParse(value, allowNullPath: true, out var address, out var name, out _, forwardPath); // checked by the option's validator
        return address.Length == 0 ? null : new MailboxAddress(name, address);
    }

    private void CheckCombination(CommandResult result)
    {
        if (Program.HasOptionErrors(result))
        {
            // A value that did not parse (a missing one: "--to" last) is reported on its own; reading it would throw.
            return;
        }

        var files = result.GetValue(_files) ?? [];
        var from = result.GetValue(_from);
        var to = result.GetValue(_to) ?? [];
        if (files.Length > 0)
        {
            if (result.GetValue(_subject) is not null || result.GetValue(_body) is not null || result.GetResult(_attach) is not null)
            {
                result.AddError("--subject, --body and --attach build a message of their own; they cannot be used with files or - (standard input)");
            }

            if (files.Count(f => f == OutgoingMessage.StandardInputName) > 1)
            {
                result.AddError("- (standard input) can be given once");
            }
        }
        else if (from is null && to.Length == 0)
        {
            result.AddError(result.GetValue(_quitAfter) is { } step
                ? $"nothing to send: --quit-after {step} still needs a message (.eml files, or --from and --to), as a send does; 'mailpipe probe' shows a server without one"
                : "nothing to send: give .eml files, or --from and --to (with --subject and --body) to build a message");
        }
        else if (from is null)
        {
            result.AddError("--from is missing: a built message needs a sender (--from ADDRESS)");
        }
        else if (to.Length == 0)
        {
            result.AddError("--to is missing: a built message needs at least one recipient (--to ADDRESS, repeat for more)");
        }
        else if (MailboxArgument.TryParse(from, allowNullPath: true, out var address, out _, out _) && address.Length == 0)
        {
            result.AddError("--from: a built message needs a sender address (\"<>\" is only for files)");
        }

        if (files.Length == 0)
        {
            // A file gets its --header fields as given; a built message is rendered by MimeKit after the connection is made.
            foreach (var value in result.GetValue(_header) ?? [])
            {
                if (HeaderArgument.TryParse(value, out var header, out _) && !MessageBuilder.TryCheckHeader(header!, out var problem))
                {
                    result.AddError($"--header: '{Shown(value)}' {problem}");
                }
            }
        }

        var server = result.GetResult(_connection.Server) is not null;
        if (server && result.GetResult(_saveDirectory) is not null)
        {
            result.AddError("--save-dir is for the embedded server; it cannot be used with --server");
        }

        var tlsOptional = result.GetValue(_tlsOptional);
        _connection.Validate(result, tlsByDefault: tlsOptional);
        var tls = result.GetValue(_connection.ImplicitTls) || result.GetValue(_connection.StartTls);
        if (tlsOptional && tls)
        {
            result.AddError("--tls-optional cannot be used with --tls or --starttls: choose whether TLS is required");
        }

        if ((tls || tlsOptional) && !server)
        {
            result.AddError("--tls, --starttls and --tls-optional need --server: the embedded server speaks plain SMTP only");
        }

        if (result.GetResult(_quitAfter) is { Tokens: [{ Value: var quitStep }] } && quitStep.Equals("tls", StringComparison.OrdinalIgnoreCase) && !tls && !tlsOptional)
        {
            // The step would be EHLO's end, silently: a TLS check that checked nothing, exit 0. (The token, not the
            // value: a step outside the list is reported on its own, and reading its value would throw.)
            result.AddError("--quit-after tls needs --tls, --starttls or --tls-optional: without them no TLS is started, so there is no TLS step to stop after (--quit-after ehlo stops at the same point)");
        }

        if (result.GetValue(_requireTls) && !tls)
        {
            result.AddError("--requiretls needs --tls or --starttls: a REQUIRETLS message is never sent without TLS");
        }

        var auth = result.GetResult(_auth) is not null;
        var user = result.GetResult(_user) is not null;
        var passwordEnvironment = result.GetResult(_passwordEnvironment) is not null;
        if (auth || user || passwordEnvironment)
        {
            if (!user || !passwordEnvironment)
            {
                result.AddError("authentication needs both --user and --password-env (the name of the environment variable that holds the password or token)");
            }

            if (!server)
            {
                result.AddError("--auth, --user and --password-env need --server: the embedded server does not authenticate");
            }

            var mechanism = AuthSettings.TryParseMechanism(result.GetValue(_auth) ?? AuthSettings.Automatic, out var name) ? name : AuthSettings.Automatic;
            if (AuthSettings.RevealsSecret(mechanism) && !tls && !result.GetValue(_allowCleartextAuth))
            {
                result.AddError($"--auth {mechanism} sends the secret itself: use --tls or --starttls, or --allow-cleartext-auth to send it without TLS anyway");
            }
        }
    }
}
