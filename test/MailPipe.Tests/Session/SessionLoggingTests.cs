using System.Text;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Logging;

namespace MailPipe.Tests.Session;

public class SessionLoggingTests
{
    private const string SecretBody = "TOP-SECRET-BODY-TEXT";

    private static readonly string[] FullTransaction =
    [
        "S: 220 mail.example.test ESMTP ready",
        "C: EHLO client.example.test",
        "S: 250-mail.example.test",
        "S: 250 PIPELINING",
        "C: MAIL FROM:<sender@example.test> SIZE=42",
        "S: 250 2.1.0 ok",
        "C: RCPT TO:<rcpt@example.test>",
        "S: 250 2.1.5 ok",
        "C: DATA",
        "S: 354 go",
        "C: Subject: x",
        "C: ",
        "C: " + SecretBody,
        "C: .",
        "S: 250 2.0.0 queued",
        "C: QUIT",
        "S: 221 bye",
        "EXPECT CLOSE",
    ];

    private static async Task<ListLoggerProvider> RunFullTransactionAsync(bool logAddresses)
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start(FullTransaction);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs, LogAddresses = logAddresses });

        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();
        await session.MailFromAsync("sender@example.test", "SIZE=42").Safe();
        await session.RcptToAsync("<rcpt@example.test>").Safe();
        await session.DataAsync().Safe();
        await session.SendMessageDataAsync(Encoding.ASCII.GetBytes($"Subject: x\r\n\r\n{SecretBody}\r\n").AsMemory()).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();
        return logs;
    }

    [Fact]
    public async Task Transcript_masks_addresses_by_default()
    {
        var logs = await RunFullTransactionAsync(logAddresses: false);

        var transcript = logs.Entries.Where(e => e.Category == "MailPipe.Protocol").Select(e => e.Message).ToList();
        transcript.Should().Equal(
            "S: 220 mail.example.test ESMTP ready",
            "C: EHLO client.example.test",
            "S: 250-mail.example.test",
            "S: 250 PIPELINING",
            "C: MAIL FROM:<***@example.test> SIZE=42",
            "S: 250 2.1.0 ok",
            "C: RCPT TO:<***@example.test>",
            "S: 250 2.1.5 ok",
            "C: DATA",
            "S: 354 go",
            "C: <message data, 36 bytes>",
            "C: .",
            "S: 250 2.0.0 queued",
            "C: QUIT",
            "S: 221 bye");
        logs.Messages.Should().NotContain(m => m.Contains("sender@", StringComparison.Ordinal) || m.Contains("rcpt@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Transcript_shows_full_addresses_when_opted_in()
    {
        var logs = await RunFullTransactionAsync(logAddresses: true);

        logs.Messages.Should().Contain("C: MAIL FROM:<sender@example.test> SIZE=42");
        logs.Messages.Should().Contain("C: RCPT TO:<rcpt@example.test>");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Message_body_never_appears_in_any_log_entry(bool logAddresses)
    {
        var logs = await RunFullTransactionAsync(logAddresses);

        foreach (var entry in logs.Entries)
        {
            entry.Message.Should().NotContain(SecretBody);
            entry.State.Should().NotContain(pair => (pair.Value as string ?? string.Empty).Contains(SecretBody, StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Event_ids_and_levels_are_the_MailPipeEventId_constants()
    {
        var logs = await RunFullTransactionAsync(logAddresses: false);
        var entries = logs.Entries;

        entries.Where(e => e.Message.StartsWith("C: ", StringComparison.Ordinal) && !e.Message.StartsWith("C: <message data", StringComparison.Ordinal))
            .Should().OnlyContain(e => e.EventId.Id == MailPipeEventId.ClientLine && e.Level == LogLevel.Trace && e.EventId.Name == "ClientLine");
        entries.Where(e => e.Message.StartsWith("S: ", StringComparison.Ordinal))
            .Should().OnlyContain(e => e.EventId.Id == MailPipeEventId.ServerLine && e.Level == LogLevel.Trace);
        entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.MessageData)
            .Which.Message.Should().Be("C: <message data, 36 bytes>");
        entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.Connected)
            .Which.Should().Match<LogEntry>(e => e.Level == LogLevel.Debug && e.Category == "MailPipe.Session" && e.Message == "Connected to stream");
        entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.Disconnected)
            .Which.Level.Should().Be(LogLevel.Debug);
        entries.Should().NotContain(e => e.EventId.Id == MailPipeEventId.ConnectionBroken);
        MailPipeEventId.ClientLine.Should().Be(1000);
        MailPipeEventId.ServerLine.Should().Be(1001);
        MailPipeEventId.MessageData.Should().Be(1002);
        MailPipeEventId.Connected.Should().Be(1101);
        MailPipeEventId.Disconnected.Should().Be(1102);
        MailPipeEventId.ConnectionBroken.Should().Be(1103);
    }

    [Fact]
    public async Task Broken_connection_is_logged_with_its_event_id()
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: NOOP", "CLOSE");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs });
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.NoopAsync().Safe()).Should().ThrowAsync<SmtpException>();

        logs.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.ConnectionBroken)
            .Which.Should().Match<LogEntry>(e => e.Level == LogLevel.Debug && e.Category == "MailPipe.Session" && e.Message.Contains("The server closed the connection", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(false, "postmaster@example.test", "C: VRFY ***@example.test")]
    [InlineData(false, "postmaster", "C: VRFY ***")]
    [InlineData(true, "postmaster@example.test", "C: VRFY postmaster@example.test")]
    public async Task Vrfy_argument_is_masked_like_an_address(bool logAddresses, string argument, string expected)
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", $"C: VRFY {argument}", "S: 252 maybe");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs, LogAddresses = logAddresses });
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.VrfyAsync(argument).Safe();

        logs.Messages.Should().Contain(expected);
    }

    [Fact]
    public async Task BDAT_headers_are_in_the_transcript_and_the_chunks_are_not()
    {
        // A first chunk of exactly 1,024 bytes (the smallest ChunkSize), then the secret line in the last one.
        var first = "Subject: x\r\n\r\n" + new string('a', 1024 - 16) + "\r\n";
        var last = SecretBody + "\r\n";
        var logs = new ListLoggerProvider();
        var script = SmtpScript.Parse(
                "S: 220 mx",
                "C: EHLO client.example.test",
                "S: 250-mx",
                "S: 250-PIPELINING",
                "S: 250 CHUNKING",
                "C: MAIL FROM:<sender@example.test>",
                "C+ RCPT TO:<rcpt@example.test>",
                "S: 250 ok",
                "S: 250 ok")
            .ExpectRaw("BDAT 1024\r\n" + first, ClientArrival.AfterReplies)
            .ExpectRaw($"BDAT {last.Length} LAST\r\n" + last, ClientArrival.WithPrevious)
            .Then("S: 250 chunk ok", "S: 250 2.0.0 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs, ChunkSize = 1024 });
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();

        var result = await session.SendAsync(new SmtpEnvelope("sender@example.test", "rcpt@example.test"), Encoding.ASCII.GetBytes(first + last)).Safe();

        result.IsAccepted.Should().BeTrue();
        logs.Messages.Should().ContainInConsecutiveOrder("C: BDAT 1024", "C: <message data, 1024 bytes>", $"C: BDAT {last.Length} LAST", $"C: <message data, {last.Length} bytes>");
        logs.Messages.Should().NotContain(m => m.Contains(SecretBody, StringComparison.Ordinal));
        await server.WaitAsync();
    }

    [Fact]
    public async Task Null_reverse_path_is_shown_as_is()
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: MAIL FROM:<>", "S: 250 ok");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs });
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.MailFromAsync(string.Empty).Safe();

        logs.Messages.Should().Contain("C: MAIL FROM:<>");
    }

    [Fact]
    public async Task Raw_commands_mask_addresses_and_always_redact_AUTH_data()
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start(
            "S: 220 mx",
            "C: MAIL FROM:<sender@example.test>",
            "C: AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=",
            "S: 235 2.7.0 ok",
            "C: XFOO visible");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs, LogAddresses = true });
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.SendCommandAsync("MAIL FROM:<sender@example.test>").Safe();
        await session.SendCommandAsync("AUTH PLAIN AHVzZXIAcGFzc3dvcmQ=").Safe();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(235, "the exchange ends with the first reply that is not 334");
        await session.SendCommandAsync("XFOO visible").Safe();
        await server.WaitAsync();

        logs.Messages.Should().Contain("C: MAIL FROM:<sender@example.test>", "LogAddresses is on");
        logs.Messages.Should().Contain("C: AUTH PLAIN <redacted>");
        logs.Messages.Should().Contain("C: XFOO visible");
        logs.Messages.Should().NotContain(m => m.Contains("AHVzZXIAcGFzc3dvcmQ=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raw_address_commands_are_masked_by_default()
    {
        var logs = new ListLoggerProvider();
        await using var server = ScriptedSmtpServer.Start("S: 220 mx", "C: RCPT TO:<rcpt@example.test>");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs });
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.SendCommandAsync("RCPT TO:<rcpt@example.test>").Safe();
        await server.WaitAsync();

        logs.Messages.Should().Contain("C: RCPT <masked>");
        logs.Messages.Should().NotContain(m => m.Contains("rcpt@", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Raw_bytes_are_logged_by_size_only()
    {
        var logs = new ListLoggerProvider();
        var script = new SmtpScript().Then("S: 220 mx").ExpectRaw($"{SecretBody}\r\n");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = logs });
        await session.ConnectAsync(server.ClientStream).Safe();

        await session.SendBytesAsync(Encoding.ASCII.GetBytes($"{SecretBody}\r\n")).Safe();
        await server.WaitAsync();

        logs.Entries.Should().ContainSingle(e => e.EventId.Id == MailPipeEventId.MessageData).Which.Message.Should().Be($"C: <message data, {SecretBody.Length + 2} bytes>");
        logs.Messages.Should().NotContain(m => m.Contains(SecretBody, StringComparison.Ordinal));
    }
}
