using System.Text;
using System.Text.Json;
using MailPipe.IntegrationTests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// The peer suite's view of the four real servers of build/servers: how to reach each one (a session of its own or the
/// shared, pooled sender) and how to read back what it stored, as the client sent it (CRLF, trace fields removed), with
/// the MAIL parameters the server saw where it records them (aiosmtpd's .json, smtp-sink's X-Mail-Args).
/// </summary>
internal static class PeerMimeServers
{
    public const string Postfix = "postfix";
    public const string Exim = "exim";
    public const string Aiosmtpd = "aiosmtpd";
    public const string Sink = "sink";

    public const string Session = "session";
    public const string Pool = "pool";

    public static string SinkDump => Environment.GetEnvironmentVariable("MAILPIPE_SINK_DUMP_DIR") ?? "/tmp/mailpipe-sink/dump";

    public static int Port(string server) => server switch
    {
        Postfix => TestServers.PostfixPort,
        Exim => TestServers.EximPort,
        Aiosmtpd => TestServers.AiosmtpdPort,
        Sink => TestServers.SinkPort,
        _ => int.Parse(server, System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>Sends on a session of its own (connect, EHLO, send, QUIT) or through a fresh pooled sender.</summary>
    public static async Task<SmtpSendResult> SendAsync(string server, string via, MimeMessage message, CancellationToken cancellationToken = default)
    {
        var port = Port(server);
        TestServers.RequireListening(port);
        if (via == Session)
        {
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.peer.test", cancellationToken);
            return await session.SendAsync(message, cancellationToken);
        }

        await using var sender = NewSender(port);
        return await sender.SendAsync(message, cancellationToken);
    }

    public static SmtpSender NewSender(int port) =>
        new(new SmtpSenderOptions { Host = TestServers.Host, Port = port, TlsMode = SmtpTlsMode.None, EhloName = "client.peer.test", MaxConnections = 1 });

    /// <summary>What the server stored for <paramref name="recipient"/>, as the client sent it.</summary>
    public static async Task<byte[]> StoredAsync(string server, string recipient) => server switch
    {
        Postfix => Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]),
        Exim => Maildir.StripTraceHeaders(await Maildir.WaitForEximAsync(recipient)),
        Aiosmtpd => await AiosmtpdStore.WaitForAsync(recipient),
        Sink => (await SinkAsync(recipient)).Message,
        _ => Maildir.StripTraceHeaders((await Maildir.WaitForPostfixAsync(recipient))[0]),
    };

    /// <summary>The MAIL parameters the server saw (aiosmtpd and smtp-sink record them; null for the others).</summary>
    public static async Task<string?> MailParametersAsync(string server, string recipient)
    {
        if (server == Sink)
        {
            return (await SinkAsync(recipient)).MailArgs;
        }

        if (server != Aiosmtpd)
        {
            return null;
        }

        await AiosmtpdStore.WaitForAsync(recipient);
        foreach (var json in Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json"))
        {
            var text = await File.ReadAllTextAsync(json);
            if (text.Contains($"\"{recipient}\"", StringComparison.Ordinal))
            {
                using var doc = JsonDocument.Parse(text);
                var options = doc.RootElement.GetProperty("mail_options").EnumerateArray().Select(o => o.GetString());
                var utf8 = doc.RootElement.GetProperty("smtputf8").GetBoolean() ? " SMTPUTF8" : string.Empty;
                return string.Join(' ', options) + utf8;
            }
        }

        return null;
    }

    /// <summary>smtp-sink's dump for a recipient: its X-Mail-Args, X-Rcpt-Args, and the message with CRLF line ends.</summary>
    public static async Task<(string MailArgs, string[] RcptArgs, byte[] Message)> SinkAsync(string recipient)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var needle = "X-Rcpt-Args: <" + recipient + ">";
        while (true)
        {
            foreach (var file in Directory.Exists(SinkDump) ? Directory.GetFiles(SinkDump) : [])
            {
                var bytes = await File.ReadAllBytesAsync(file);
                var text = Encoding.UTF8.GetString(bytes);
                if (!text.Contains(needle, StringComparison.Ordinal) || !text.EndsWith("\n\n", StringComparison.Ordinal))
                {
                    continue;
                }

                var lines = Encoding.Latin1.GetString(bytes, 0, bytes.Length - 1).Split('\n').ToList();
                var mail = Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(lines.First(l => l.StartsWith("X-Mail-Args: ", StringComparison.Ordinal))["X-Mail-Args: ".Length..]));
                var rcpts = lines.Where(l => l.StartsWith("X-Rcpt-Args: ", StringComparison.Ordinal)).Select(l => Encoding.UTF8.GetString(Encoding.Latin1.GetBytes(l["X-Rcpt-Args: ".Length..]))).ToArray();
                var start = 0;
                while (lines[start].StartsWith("X-", StringComparison.Ordinal))
                {
                    start++;
                }

                start++; // Received:
                while (lines[start].StartsWith('\t') || lines[start].StartsWith(' '))
                {
                    start++;
                }

                var message = string.Join("\r\n", lines.Skip(start));
                return (mail, rcpts, Encoding.Latin1.GetBytes(message));
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No smtp-sink dump for {recipient} in {SinkDump}.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The longest line of some bytes, in octets, without its line end.</summary>
    public static int LongestLine(byte[] bytes)
    {
        var longest = 0;
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\n')
            {
                longest = Math.Max(longest, i - start - (i > start && bytes[i - 1] == '\r' ? 1 : 0));
                start = i + 1;
            }
        }

        return Math.Max(longest, bytes.Length - start);
    }

    public static MimeMessage Reparse(byte[] stored) => MimeMessage.Load(new MemoryStream(stored));
}
