using System.Text;

namespace MailPipe.EndToEnd;

/// <summary>One case: a message of a given size to a given number of recipients, in every form the clients need.</summary>
internal sealed class Workload
{
    public const string Sender = "sender@example.test";

    private Workload(int size, int recipientCount, int messages)
    {
        Size = size;
        Messages = messages;
        Recipients = [.. Enumerable.Range(1, recipientCount).Select(i => $"rcpt{i}@example.test")];
        Message = BuildMessage(size, Recipients, out var bodyText);
        BodyText = bodyText;
    }

    /// <summary>The whole message (headers and body), exactly <see cref="Size"/> bytes, CRLF line ends.</summary>
    public byte[] Message { get; }

    /// <summary>The body alone, for clients that build the MIME themselves (System.Net.Mail).</summary>
    public string BodyText { get; }

    public int Size { get; }

    public IReadOnlyList<string> Recipients { get; }

    public int Messages { get; }

    public string Label => $"{Options.FormatSize(Size)}, {Recipients.Count} rcpt";

    public static Workload Create(int size, int recipientCount, int messages) => new(size, recipientCount, messages);

    /// <summary>Plain-text message: a few headers, then lines of 20 to 76 characters; about 5 % of the lines start with '.'.</summary>
    private static byte[] BuildMessage(int size, IReadOnlyList<string> recipients, out string bodyText)
    {
        var header = new StringBuilder();
        header.Append("From: Sender <").Append(Sender).Append(">\r\n");
        header.Append("To: ").Append(string.Join(", ", recipients.Select(r => $"<{r}>"))).Append("\r\n");
        header.Append("Subject: MailPipe end-to-end benchmark\r\n");
        header.Append("Date: Sun, 29 Nov 2026 12:00:00 +0000\r\n");
        header.Append("Message-ID: <bench.1@example.test>\r\n");
        header.Append("MIME-Version: 1.0\r\n");
        header.Append("Content-Type: text/plain; charset=us-ascii\r\n");
        header.Append("Content-Transfer-Encoding: 7bit\r\n\r\n");
        var headerBytes = Encoding.ASCII.GetByteCount(header.ToString());
        if (headerBytes + 64 > size)
        {
            throw new ArgumentException($"A message of {size} bytes is too small for its headers ({headerBytes} bytes).");
        }

        string[] words = ["the", "message", "server", "delivery", "of", "and", "to", "a", "queue", "pipeline", "reply", "status",
            "recipient", "sender", "header", "body", "line", "with", "for", "is", "on", "that", "mail", "transfer", "protocol"];
        var random = new Random(size);
        var body = new StringBuilder(size);
        var bodySize = size - headerBytes;
        var line = new StringBuilder(80);
        while (body.Length < bodySize)
        {
            line.Clear();
            if (random.Next(20) == 0)
            {
                line.Append('.');
            }

            var target = random.Next(20, 77);
            while (line.Length < target)
            {
                if (line.Length > 1)
                {
                    line.Append(' ');
                }

                line.Append(words[random.Next(words.Length)]);
            }

            line.Append("\r\n");
            body.Append(line);
        }

        // Cut to size and end with CRLF.
        body.Length = bodySize - 2;
        body.Append("\r\n");
        bodyText = body.ToString();
        var message = Encoding.ASCII.GetBytes(header.ToString() + bodyText);
        return message.Length == size ? message : throw new InvalidOperationException("Message size mismatch.");
    }
}
