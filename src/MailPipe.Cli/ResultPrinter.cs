using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>Writes each message's result: a few readable lines, or with <c>--json</c> one JSON object per line.</summary>
internal sealed class ResultPrinter
{
    private static readonly JsonWriterOptions JsonOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    private readonly TextWriter _output;
    private readonly bool _json;

    /// <summary>Creates a printer.</summary>
    /// <param name="output">Standard output.</param>
    /// <param name="json">Whether to write JSON lines.</param>
    public ResultPrinter(TextWriter output, bool json)
    {
        _output = output;
        _json = json;
    }

    /// <summary>
    /// Why writing to standard output failed (a full disk, a closed descriptor), or <see langword="null"/>. After the
    /// first failure nothing more is written: the batch goes on (a failure here must never stop it with messages in
    /// flight), and the run says on standard error what was lost.
    /// </summary>
    public Exception? Failure { get; private set; }

    /// <summary>Writes one result (buffered: see <see cref="Flush"/>).</summary>
    /// <param name="result">The result.</param>
    public void Print(MessageResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        Write(_json ? ToJson(result) + "\n" : TerminalText.Sanitize(ToText(result)));
    }

    /// <summary>Flushes what was printed: called before the run waits for the server, so that every result known so far is out.</summary>
    public void Flush() => Guarded(static output => output.Flush(), _output);

    private void Write(string text) => Guarded(static (output, text) => output.Write(text), _output, text);

    private void Guarded<T>(Action<TextWriter, T> write, TextWriter output, T argument)
    {
        if (Failure is not null)
        {
            return;
        }

        try
        {
            write(output, argument);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // EBADF comes as UnauthorizedAccessException, a full disk or a broken device as IOException.
            Failure = ex;
        }
    }

    private void Guarded(Action<TextWriter> write, TextWriter output) => Guarded(static (o, w) => w(o), output, write);

    /// <summary>The result as one line of JSON (no line break).</summary>
    /// <param name="result">The result.</param>
    /// <returns>A JSON object: type ("message"), file, index, from, recipients [{address, code, enhancedStatus, text, accepted}], mailReply, dataReply, finalReply, outcome, transactions, exitCode, error, savedTo.</returns>
    public static string ToJson(MessageResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return JsonLine.Object(JsonOptions, json =>
        {
            json.WriteString("type", "message");
            json.WriteString("file", result.File);
            json.WriteNumber("index", result.Index);
            json.WriteString("from", result.From);
            json.WriteStartArray("recipients");
            foreach (var recipient in result.Recipients)
            {
                json.WriteStartObject();
                json.WriteString("address", recipient.Address);
                if (recipient.Reply is null)
                {
                    json.WriteNull("code");
                    json.WriteNull("enhancedStatus");
                    json.WriteNull("text");
                }
                else
                {
                    WriteReplyFields(json, recipient.Reply);
                }

                json.WriteBoolean("accepted", recipient.Accepted);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            WriteReply(json, "mailReply", result.MailReply);
            WriteReply(json, "dataReply", result.DataReply);
            WriteReply(json, "finalReply", result.FinalReply);
            json.WriteString("outcome", OutcomeName(result.Outcome));
            json.WriteNumber("transactions", result.Transactions);
            json.WriteNumber("exitCode", result.ExitCode);
            json.WriteString("error", result.Error);
            json.WriteString("savedTo", result.SavedTo);
        });
    }

    /// <summary>Writes the summary of the run, last.</summary>
    /// <param name="summary">The summary.</param>
    public void Print(BatchSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        Write(_json ? ToJson(summary) + "\n" : TerminalText.Sanitize(ToText(summary)));
        Flush();
    }

    /// <summary>The summary as one line of JSON (no line break).</summary>
    /// <param name="summary">The summary.</param>
    /// <returns>A JSON object: type ("summary"), messages, accepted, refused, unknown, notSent, bytes, elapsedSeconds, messagesPerSecond, exitCode, server, connections (how many were made; 0 when none was tried), tls ({protocol, cipherSuite, nameMatched} or null), authenticatedAs, authMechanism, error (why the connection could not be used: the first, or the last new one, with how many messages were not sent).</returns>
    public static string ToJson(BatchSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        return JsonLine.Object(JsonOptions, json =>
        {
            json.WriteString("type", "summary");
            json.WriteNumber("messages", summary.Messages);
            json.WriteNumber("accepted", summary.Accepted);
            json.WriteNumber("refused", summary.Refused);
            json.WriteNumber("unknown", summary.Unknown);
            json.WriteNumber("notSent", summary.NotSent);
            json.WriteNumber("bytes", summary.Bytes);
            json.WriteNumber("elapsedSeconds", Math.Round(summary.Elapsed.TotalSeconds, 6));
            json.WriteNumber("messagesPerSecond", Math.Round(summary.MessagesPerSecond, 3));
            json.WriteNumber("exitCode", summary.ExitCode);
            json.WriteString("server", summary.Server?.ToString());
            json.WriteNumber("connections", summary.Connections);
            if (summary.Tls is { } tls)
            {
                json.WriteStartObject("tls");
                json.WriteString("protocol", tls.Protocol);
                json.WriteString("cipherSuite", tls.CipherSuite);
                json.WriteBoolean("nameMatched", tls.NameMatched);
                json.WriteEndObject();
            }
            else
            {
                json.WriteNull("tls");
            }

            json.WriteString("authenticatedAs", summary.AuthenticatedAs);
            json.WriteString("authMechanism", summary.AuthMechanism);
            json.WriteString("error", summary.Error);
            if (summary.Steps is { } steps)
            {
                json.WriteStartArray("steps");
                foreach (var step in steps)
                {
                    json.WriteStartObject();
                    json.WriteString("step", step.Step);
                    if (step.Reply is { } reply)
                    {
                        WriteReplyFields(json, reply);
                    }

                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }
        });
    }

    /// <summary>The summary as readable lines, each ending with a line break.</summary>
    /// <param name="summary">The summary.</param>
    /// <returns>The text.</returns>
    public static string ToText(BatchSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        var text = new StringBuilder();
        foreach (var step in summary.Steps ?? [])
        {
            text.Append(CultureInfo.InvariantCulture, $"{step.Step}: {step.Reply?.ToString() ?? "connected"}\n");
        }

        var messages = summary.Messages == 1 ? "1 message" : string.Create(CultureInfo.InvariantCulture, $"{summary.Messages} messages");
        text.Append(CultureInfo.InvariantCulture, $"summary: {messages}: {summary.Accepted} accepted, {summary.Refused} refused, {summary.NotSent} not sent, {summary.Unknown} unknown; ");
        text.Append(CultureInfo.InvariantCulture, $"{summary.Bytes:N0} bytes accepted in {summary.Elapsed.TotalSeconds:0.000} s, {summary.MessagesPerSecond:0.00} messages/s (exit {summary.ExitCode})\n");
        if (summary.Server is { } server)
        {
            text.Append(summary.Connections > 1 ? string.Create(CultureInfo.InvariantCulture, $"  connections: {summary.Connections} to {server}") : $"  connection: {server}");
            // An error of a first connection leaves its TLS unknown; one of a later new connection does not (the first was used).
            text.Append(summary.Tls is { } tls ? $", {tls}" : summary.Error is null || summary.Connections > 1 ? ", no TLS" : string.Empty);
            if (summary.AuthenticatedAs is { } user)
            {
                text.Append(CultureInfo.InvariantCulture, $", authenticated as {user} ({summary.AuthMechanism})");
            }

            if (summary.Error is { } reason)
            {
                // Self-contained: standard output may be a file, and the error line went to standard error.
                text.Append(", not usable: ").Append(reason.ReplaceLineEndings(" "));
            }

            text.Append('\n');
        }

        return text.ToString();
    }

    /// <summary>The result as readable lines, each ending with a line break.</summary>
    /// <param name="result">The result.</param>
    /// <returns>The text.</returns>
    public static string ToText(MessageResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var text = new StringBuilder();
        var name = OneLine(result.File) ?? string.Create(CultureInfo.InvariantCulture, $"message {result.Index}");
        var verdict = result.Outcome switch
        {
            MessageOutcome.Accepted => "accepted",
            MessageOutcome.Refused => "refused",
            MessageOutcome.Unknown => "outcome unknown",
            _ => "not sent",
        };
        var transactions = result.Transactions > 1 ? string.Create(CultureInfo.InvariantCulture, $", in {result.Transactions} transactions (recipients refused with 452, too many, sent it again)") : string.Empty;
        text.Append(CultureInfo.InvariantCulture, $"{name}: {verdict} (exit {result.ExitCode}){transactions}\n");
        if (result.MailReply is { } mail)
        {
            text.Append(CultureInfo.InvariantCulture, $"  from <{result.From}>: {mail}\n");
        }

        foreach (var recipient in result.Recipients)
        {
            if (recipient.Reply is null && (result.Outcome == MessageOutcome.NotSent || result.MailReply is { IsPositive: false }))
            {
                continue; // never sent (the message was not, or MAIL was refused and the RCPT not sent): "no reply" would say nothing
            }

            var reply = recipient.Reply is null ? "no reply" : recipient.Reply.ToString();
            var mark = recipient.Accepted || recipient.Reply is null ? string.Empty : " (refused)";
            text.Append(CultureInfo.InvariantCulture, $"  to <{recipient.Address}>: {reply}{mark}\n");
        }

        if (result.DataReply is { Code: not 354 } data)
        {
            text.Append(CultureInfo.InvariantCulture, $"  data: {data}\n");
        }

        if (result.FinalReply is { } final)
        {
            text.Append(CultureInfo.InvariantCulture, $"  final: {final}\n");
        }

        if (result.Error is { } error && !result.SessionFailure)
        {
            // Line breaks inside the error (a server's multi-line reply) read as " / ", as reply lines do elsewhere:
            // still one line of the text.
            text.Append(CultureInfo.InvariantCulture, $"  error: {OneLine(error.Replace("\r\n", " / ", StringComparison.Ordinal).Replace("\n", " / ", StringComparison.Ordinal))}\n");
        }

        if (result.SavedTo is { } saved)
        {
            text.Append(CultureInfo.InvariantCulture, $"  saved to {OneLine(saved)}\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// A value that goes inside one line of the text (a file name, an error that names one): its line breaks show as
    /// '?', as <see cref="TerminalText.Sanitize"/> shows other control characters, so that a file named with a line
    /// break cannot print a line of its own (one that reads as another file's result, or the summary).
    /// </summary>
    private static string? OneLine(string? value) => value?.Replace('\n', '?');

    private static string OutcomeName(MessageOutcome outcome) => outcome switch
    {
        MessageOutcome.Accepted => "accepted",
        MessageOutcome.Refused => "refused",
        MessageOutcome.Unknown => "unknown",
        _ => "notSent",
    };

    private static void WriteReply(Utf8JsonWriter json, string name, ReplyInfo? reply)
    {
        if (reply is null)
        {
            json.WriteNull(name);
            return;
        }

        json.WriteStartObject(name);
        WriteReplyFields(json, reply);
        json.WriteEndObject();
    }

    private static void WriteReplyFields(Utf8JsonWriter json, ReplyInfo reply)
    {
        json.WriteNumber("code", reply.Code);
        json.WriteString("enhancedStatus", reply.EnhancedStatus);
        json.WriteString("text", reply.Text);
    }
}
