using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Sending;

/// <summary>Shared pieces of the envelope-API tests: the EHLO exchange, a connected session, message content, BDAT framing.</summary>
internal static class SendScripts
{
    public const string Sender = "sender@example.test";
    public const string Greeting = "S: 220 mail.example.test ESMTP ready";

    /// <summary>A small text message: 21 bytes, CRLF line ends.</summary>
    public const string SmallText = "Subject: hi\r\n\r\nbody\r\n";

    /// <summary>The greeting, then EHLO answered with these extensions (none: a one-line 250).</summary>
    public static string[] Ehlo(params string[] extensions)
    {
        List<string> lines = [Greeting, "C: EHLO client.example.test"];
        if (extensions.Length == 0)
        {
            lines.Add("S: 250 mail.example.test");
            return [.. lines];
        }

        lines.Add("S: 250-mail.example.test");
        for (var i = 0; i < extensions.Length; i++)
        {
            lines.Add((i == extensions.Length - 1 ? "S: 250 " : "S: 250-") + extensions[i]);
        }

        return [.. lines];
    }

    /// <summary>The EHLO exchange followed by <paramref name="transcript"/>.</summary>
    public static SmtpScript Script(string[] ehlo, params string[] transcript) => SmtpScript.Parse([.. ehlo, .. transcript]);

    /// <summary>The transcript lines of a CRLF text message as it arrives after DATA: each line dot-stuffed, then the dot. The first line waits for the 354 (<c>C&gt;</c>), the rest follow in the same flush (<c>C+</c>).</summary>
    public static string[] DataLines(string content, bool firstAfterReply = true)
    {
        var lines = content.EndsWith("\r\n", StringComparison.Ordinal) ? content[..^2].Split("\r\n") : content.Split("\r\n");
        var transcript = new List<string>();
        for (var i = 0; i < lines.Length; i++)
        {
            var stuffed = lines[i].StartsWith('.') ? "." + lines[i] : lines[i];
            transcript.Add((i == 0 ? (firstAfterReply ? "C> " : "C: ") : "C+ ") + stuffed);
        }

        transcript.Add("C+ .");
        return [.. transcript];
    }

    /// <summary>
    /// A pipelining server for m1@example.test that, with <paramref name="chunking"/>, offers CHUNKING and expects nothing
    /// more; without, answers MAIL, RCPT and DATA (250, 250, 354). Either way it then reads until the client closes.
    /// </summary>
    public static SmtpScript FirstMessageUntilClosed(bool chunking) => chunking
        ? Script(Ehlo("PIPELINING", "CHUNKING")).ReadUntilClosed()
        : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 354 go").ReadUntilClosed();

    /// <summary>
    /// A pipelining server for one@example.test that takes one small text message (with <paramref name="chunking"/>
    /// as BDAT LAST, else after DATA's 354), signals <paramref name="reached"/> once MAIL and RCPT are answered, never
    /// answers the end of data, and reads until the client closes: a send left waiting for its final reply.
    /// </summary>
    public static SmtpScript FinalReplyNeverSent(bool chunking, TaskCompletionSource reached) => (chunking
            ? Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>")
                .ExpectBytes(Bdat(SmallText, last: true), ClientArrival.WithPrevious)
                .SendPieces("250 ok\r\n250 2.1.5 ok\r\n")
            : Script(Ehlo("PIPELINING"), "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 2.1.5 ok", "S: 354 go")
                .Then(DataLines(SmallText)))
        .Signal(reached).ReadUntilClosed();

    /// <summary>
    /// Waits (up to the scripted server's safety timeout) until only the final reply is due. With BDAT the client sent
    /// everything before any reply: the server's signal says the MAIL and RCPT replies went out, not that the client has
    /// read them, and a close before that reading truthfully leaves the recipient's reply unknown.
    /// </summary>
    public static async Task WaitUntilOnlyTheFinalReplyIsDueAsync(AsyncSmtpSession session)
    {
        var until = DateTime.UtcNow + ScriptedSmtpServer.SafetyTimeout;
        while (session.PendingReplyCount > 1 && DateTime.UtcNow < until)
        {
            await Task.Delay(5);
        }
    }

    /// <summary>A caller's sequence: yields <paramref name="first"/>, cancels <paramref name="cts"/> (after a yield), then yields <paramref name="second"/>.</summary>
    public static async IAsyncEnumerable<SmtpMessage> CancelThenYield(CancellationTokenSource cts, SmtpMessage first, SmtpMessage second)
    {
        yield return first;
        await Task.Yield();
        await cts.CancelAsync();
        yield return second;
    }

    /// <summary>Connects to the scripted server and sends EHLO.</summary>
    public static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server, SmtpSessionOptions? options = null)
    {
        var session = new AsyncSmtpSession(options);
        await session.ConnectAsync(server.ClientStream).Safe();
        var ehlo = await session.EhloAsync("client.example.test").Safe();
        ehlo.Code.Should().Be(250);
        return session;
    }

    public static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text);

    public static SmtpEnvelope Envelope(params string[] recipients) => new(Sender, recipients);

    /// <summary>The content of the <paramref name="i"/>th message of a batch.</summary>
    public static string Content(int i) => $"Subject: message {i}\r\n\r\nbody {i}\r\n";

    /// <summary>The <paramref name="i"/>th message of a batch: <see cref="Content"/> for m<paramref name="i"/>@example.test.</summary>
    public static SmtpMessage Message(int i) => SmtpMessage.FromBytes(Envelope($"m{i}@example.test"), Encoding.ASCII.GetBytes(Content(i)));

    /// <summary>A BDAT chunk as it goes on the wire: <c>BDAT n[ LAST]</c> CRLF and the bytes.</summary>
    public static byte[] Bdat(ReadOnlySpan<byte> chunk, bool last) =>
        [.. Encoding.ASCII.GetBytes(last ? $"BDAT {chunk.Length} LAST\r\n" : $"BDAT {chunk.Length}\r\n"), .. chunk];

    /// <summary>A BDAT chunk of text.</summary>
    public static byte[] Bdat(string chunk, bool last) => Bdat(Encoding.UTF8.GetBytes(chunk), last);

    /// <summary>Text lines of exactly <paramref name="lineLength"/> bytes each (CRLF included), <paramref name="count"/> of them.</summary>
    public static string Lines(int count, int lineLength, char fill = 'x')
    {
        var builder = new StringBuilder(count * lineLength);
        for (var i = 0; i < count; i++)
        {
            var label = i.ToString("D4");
            builder.Append(label).Append(fill, lineLength - 2 - label.Length).Append("\r\n");
        }

        return builder.ToString();
    }

    /// <summary>Sends <paramref name="messages"/> with SendBatchAsync, or (<paramref name="streaming"/>) with SendBatchStreamingAsync collecting each result as it is yielded (and releasing <paramref name="resultSeen"/> once per result, for a sequence that waits for a result before it goes on).</summary>
    public static async Task<List<SmtpSendResult>> SendSequenceAsync(AsyncSmtpSession session, IAsyncEnumerable<SmtpMessage> messages, bool streaming, CancellationToken cancellationToken, SemaphoreSlim? resultSeen = null)
    {
        if (!streaming)
        {
            return [.. await session.SendBatchAsync(messages, cancellationToken).Safe()];
        }

        var results = new List<SmtpSendResult>();
        await foreach (var result in session.SendBatchStreamingAsync(messages, cancellationToken))
        {
            results.Add(result);
            resultSeen?.Release();
        }

        return results;
    }

    /// <summary>The server side of a BDAT exchange of unknown chunking: reads chunks until LAST, answering each with <paramref name="reply"/>; collects the chunk sizes and the bytes.</summary>
    public static SmtpScript ReadChunks(this SmtpScript script, List<int> sizes, List<byte> data, string reply = "250 2.0.0 chunk ok") =>
        script.Do("READ BDAT CHUNKS", async (server, ct) =>
        {
            while (true)
            {
                var header = await server.ReadLineAsync(ct) ?? throw new ScriptMismatchException("expected BDAT but the client closed the connection");
                var text = Encoding.ASCII.GetString(header);
                var parts = text.TrimEnd('\r', '\n').Split(' ');
                if (parts.Length < 2 || parts[0] != "BDAT" || !int.TryParse(parts[1], out var size) || (parts.Length == 3 && parts[2] != "LAST") || parts.Length > 3)
                {
                    throw new ScriptMismatchException($"expected a BDAT header but received \"{SmtpScript.Printable(text)}\"");
                }

                var bytes = await server.ReadExactlyAsync(size, ct);
                sizes.Add(size);
                data.AddRange(bytes);
                await server.SendAsync(Encoding.ASCII.GetBytes(reply + "\r\n"), ct);
                if (parts.Length == 3)
                {
                    return;
                }
            }
        });
}
