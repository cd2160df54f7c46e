using System.Globalization;
using System.Net.Mail;
using System.Text;

namespace MailPipe.Samples.WebApi;

/// <summary>The body of <c>POST /mail</c> and <c>POST /mail/queue</c>.</summary>
/// <param name="From">The sender's address (the reverse-path and the From header).</param>
/// <param name="To">The recipients' addresses (forward-paths and the To header).</param>
/// <param name="Subject">The subject; any Unicode text on one line.</param>
/// <param name="Body">The plain-text body.</param>
public sealed record MailRequest(string? From, string[]? To, string? Subject, string? Body);

/// <summary>The answer of <c>POST /mail</c>: the outcome by name, the deciding reply code, and each recipient.</summary>
/// <param name="Outcome">Accepted, Refused, NotSent or Unknown.</param>
/// <param name="ReplyCode">
/// The reply that decided the outcome: the final reply (250) for Accepted; for Refused the MAIL refusal, else the last
/// RCPT refusal when no recipient was accepted, else the refusal of DATA or of the end of data; null for NotSent and Unknown.
/// </param>
/// <param name="Recipients">Each recipient with the RCPT reply that decided it (with retries: that of the attempt that decided it).</param>
/// <param name="Attempts">How many mail transactions the standard pipeline's retries took (1 without a retry).</param>
/// <param name="Error">
/// For NotSent and Unknown, why: the <see cref="SmtpErrorCode"/> name (<c>ConnectionRefused</c>, <c>MessageTooLarge</c>,
/// <c>Timeout</c>, ...), else the exception's type name (<c>BrokenCircuitException</c>); null when a reply decided the outcome.
/// </param>
public sealed record MailResponse(string Outcome, int? ReplyCode, IReadOnlyList<RecipientResponse> Recipients, int Attempts, string? Error)
{
    /// <summary>Maps a result: the outcome is data, answered with 200 whatever it is.</summary>
    public static MailResponse From(SmtpSendResult result)
    {
        var deciding = result.Outcome switch
        {
            SmtpSendOutcome.Accepted => result.FinalReply,
            SmtpSendOutcome.Refused => result.MailReply is { IsNegative: true } mail ? mail
                : !result.Recipients.Any(static r => r.Accepted) ? result.Recipients.LastOrDefault(static r => r.Reply is { IsNegative: true })?.Reply
                : result.DataReply is { IsNegative: true } data ? data
                : result.FinalReply,
            _ => null,
        };
        return new MailResponse(
            result.Outcome.ToString(),
            deciding?.Code,
            [.. result.Recipients.Select(static r => new RecipientResponse(r.Recipient.Address, r.Reply?.Code, r.Accepted))],
            result.Attempts,
            result.Outcome is SmtpSendOutcome.NotSent or SmtpSendOutcome.Unknown
                ? result.Exception is SmtpException smtp ? smtp.ErrorCode.ToString() : result.Exception?.GetType().Name
                : null);
    }
}

/// <summary>One recipient of a <see cref="MailResponse"/>.</summary>
/// <param name="Address">The address.</param>
/// <param name="ReplyCode">The reply to its RCPT, or null when none came.</param>
/// <param name="Accepted">Whether the server accepted it.</param>
public sealed record RecipientResponse(string Address, int? ReplyCode, bool Accepted);

/// <summary>The answer of <c>POST /mail/queue</c>.</summary>
/// <param name="Id">The id under which the consumer logs the message.</param>
public sealed record QueuedResponse(string Id);

/// <summary>Checks a <see cref="MailRequest"/> and builds the message (RFC 5322 headers, UTF-8 text body).</summary>
public static class MailRequestValidator
{
    private const int MaxRecipients = 100;
    private static readonly System.Buffers.SearchValues<char> s_forbidden = System.Buffers.SearchValues.Create("\r\n\0<> ");

    /// <summary>Builds the message, or the problems found, keyed by field, for a 400 problem document.</summary>
    public static bool TryCreateMessage(MailRequest? request, out SmtpMessage message, out Dictionary<string, string[]> errors)
    {
        errors = [];
        message = null!;
        if (request is null)
        {
            errors["body"] = ["A JSON body {\"from\", \"to\", \"subject\", \"body\"} is required."];
            return false;
        }

        if (!IsAddress(request.From))
        {
            errors["from"] = [$"'{request.From}' is not an email address such as alice@example.com."];
        }

        if (request.To is not { Length: > 0 })
        {
            errors["to"] = ["At least one recipient is required."];
        }
        else if (request.To.Length > MaxRecipients)
        {
            errors["to"] = [$"At most {MaxRecipients} recipients."];
        }
        else
        {
            var bad = request.To.Where(static a => !IsAddress(a)).Select(static a => $"'{a}' is not an email address such as bob@example.com.").ToArray();
            if (bad.Length > 0)
            {
                errors["to"] = bad;
            }
        }

        if (request.Subject is { } subject && subject.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            errors["subject"] = ["The subject must be one line."];
        }

        if (request.Body is null)
        {
            errors["body"] = ["A body is required (it may be empty)."];
        }

        if (errors.Count > 0)
        {
            return false;
        }

        // An address beyond ASCII needs SMTPUTF8 (RFC 6531); the server refuses the message if it lacks it.
        var envelope = new SmtpEnvelope(request.From!, request.To!) { SmtpUtf8 = !Ascii.IsValid(request.From!) || !request.To!.All(static a => Ascii.IsValid(a)) };
        message = SmtpMessage.FromBytes(envelope, Format(request));
        return true;
    }

    private static bool IsAddress(string? address) =>
        !string.IsNullOrWhiteSpace(address)
        && address.AsSpan().IndexOfAny(s_forbidden) < 0
        && MailAddress.TryCreate(address, out var parsed)
        && parsed.Address == address
        && parsed.DisplayName.Length == 0
        && IsMailbox(address);

    /// <summary>MailAddress takes some addresses that are not RFC 5321 mailboxes (a trailing dot, '!' in a domain): the envelope refuses those.</summary>
    private static bool IsMailbox(string address)
    {
        try
        {
            _ = new SmtpRecipient(address);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static byte[] Format(MailRequest request)
    {
        var text = new StringBuilder();
        text.Append("From: ").Append(request.From).Append("\r\n");
        // One address per line (folded, RFC 5322 §3.2.2): 100 recipients on one line would pass the 998-octet line limit (§2.1.1).
        text.Append("To: ").AppendJoin(",\r\n ", request.To!).Append("\r\n");
        text.Append("Subject: ").Append(EncodeHeader(request.Subject ?? string.Empty)).Append("\r\n");
        text.Append("Date: ").Append(DateTimeOffset.UtcNow.ToString("ddd, dd MMM yyyy HH:mm:ss '+0000'", CultureInfo.InvariantCulture)).Append("\r\n");
        text.Append("Message-ID: <").Append(Guid.NewGuid().ToString("N")).Append("@mailpipe.sample>\r\n");
        text.Append("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
        var body = request.Body!;
        // 7bit only for ASCII text without NUL (RFC 5322 §2.3; MailPipe refuses a NUL in message data) and with lines of at most 998 octets.
        if (Ascii.IsValid(body) && !body.Contains('\0', StringComparison.Ordinal) && body.Split('\n').All(static l => l.Length <= 998))
        {
            text.Append("Content-Transfer-Encoding: 7bit\r\n\r\n").Append(body);
        }
        else
        {
            text.Append("Content-Transfer-Encoding: base64\r\n\r\n");
            var base64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(body));
            for (var i = 0; i < base64.Length; i += 76)
            {
                text.Append(base64, i, Math.Min(76, base64.Length - i)).Append("\r\n");
            }
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>RFC 2047 encoded-words (UTF-8, base64) for a non-ASCII or long subject, each at most 75 characters.</summary>
    private static string EncodeHeader(string value)
    {
        // A long ASCII subject is encoded too, so that its line keeps within 998 octets (RFC 5322 §2.1.1) even without spaces to fold at.
        if (Ascii.IsValid(value) && value.Length <= 900)
        {
            return value;
        }

        var words = new List<string>();
        var chunk = new StringBuilder();
        foreach (var rune in value.EnumerateRunes())
        {
            if (Encoding.UTF8.GetByteCount(chunk.ToString()) + rune.Utf8SequenceLength > 45)
            {
                words.Add(Word(chunk.ToString()));
                chunk.Clear();
            }

            chunk.Append(rune.ToString());
        }

        words.Add(Word(chunk.ToString()));
        return string.Join("\r\n ", words);

        static string Word(string part) => "=?utf-8?B?" + Convert.ToBase64String(Encoding.UTF8.GetBytes(part)) + "?=";
    }
}
