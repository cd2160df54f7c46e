using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A breaker's probe of serve's bare-LF command lines (merge d51ff7e): the input reader gives SmtpServer a line ending in
/// a bare LF as a copy ending in CRLF, except inside a message, which it guesses from a consumed DATA line.
/// </summary>
public class Breaker16ServeTests
{
    /// <summary>
    /// A DATA that was refused (no recipient, or no MAIL at all) left the reader believing a message followed, so the
    /// next command, ending in a bare LF, was not given to SmtpServer as a line: no reply until the idle timeout.
    /// </summary>
    [Theory]
    [InlineData("MAIL FROM:<a@example.test>\r\nDATA\r\n", 2)]
    [InlineData("MAIL FROM:<a@example.test>\nDATA\n", 2)]
    [InlineData("DATA\r\n", 1)]
    public async Task A_bare_LF_command_right_after_a_refused_DATA_is_answered(string commands, int replies)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "20");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        await client.SendAsync("EHLO raw.example\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        await client.SendAsync(commands);
        for (var i = 0; i < replies - 1; i++)
        {
            (await client.ReadReplyAsync()).Should().StartWith("250");
        }

        (await client.ReadReplyAsync()).Should().MatchRegex("^5[05][0-9]", "DATA without a recipient is refused");

        await client.SendAsync("RSET\n");
        (await client.ReadReplyAsync()).Should().StartWith("250", "RSET ending in a bare LF is a command line like any other");
        await client.SendAsync("QUIT\n");
        (await client.ReadReplyAsync()).Should().StartWith("221");
    }

    /// <summary>
    /// Mixed CRLF and bare-LF pipelined commands split into two TCP sends at every byte (a CR at the end of one, its LF
    /// at the start of the next included): each command gets exactly its reply, and the message data after 354, whose
    /// bare LFs and "LF . LF" do not end it, is saved whole.
    /// </summary>
    [Fact]
    public async Task Pipelined_CRLF_and_bare_LF_commands_split_at_every_byte_get_their_replies()
    {
        const string Commands = "EHLO raw.example\r\nNOOP\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\nDATA\r\n";
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "20");
        for (var split = 1; split < Commands.Length; split++)
        {
            await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
            (await client.ReadReplyAsync()).Should().StartWith("220");
            await client.SendAsync(Commands[..split]);
            await Task.Delay(5); // a stimulus, not a synchronisation: the server mostly reads the two parts apart
            await client.SendAsync(Commands[split..]);
            string?[] replies = [await client.ReadReplyAsync(), await client.ReadReplyAsync(), await client.ReadReplyAsync(), await client.ReadReplyAsync(), await client.ReadReplyAsync()];
            replies.Select(r => r?[..3]).Should().Equal(["250", "250", "250", "250", "354"], $"split at {split}");
            await client.SendAsync($"Subject: {split}\r\n\r\nx\n.\nstill\r\n.\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            await client.SendAsync("QUIT\n");
            (await client.ReadReplyAsync()).Should().StartWith("221");
        }

        var saved = Directory.GetFiles(dir.Path);
        saved.Should().HaveCount(Commands.Length - 1);
        File.ReadAllText(saved[0]).Should().Contain("x\n.\nstill");
    }

    /// <summary>
    /// STARTTLS after bare-LF commands, with plaintext commands pipelined after it in the same segment (RFC 3207 §4.2,
    /// CVE-2011-0411): none of them is executed, the connection is closed.
    /// </summary>
    [Theory]
    [InlineData("STARTTLS\nEHLO injected\n")]
    [InlineData("STARTTLS\nEHLO injected\r\n")]
    [InlineData("STARTTLS\r\nNOOP\n")]
    public async Task Plaintext_pipelined_after_a_bare_LF_STARTTLS_is_never_executed(string commands)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--starttls", "--idle-timeout", "20");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        await client.SendAsync("EHLO raw.example\nNOOP\n");
        (await client.ReadReplyAsync()).Should().StartWith("250").And.Contain("STARTTLS");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        await client.SendAsync(commands);
        var replies = await client.ReadRepliesToEndAsync();
        replies.Should().NotContain(r => r.StartsWith("250", StringComparison.Ordinal), "nothing after STARTTLS was executed in plaintext");
    }

    /// <summary>A long bare-LF line (within the 32 KiB command limit) and a line over the limit: a reply each, no hang.</summary>
    [Fact]
    public async Task Long_bare_LF_lines_get_a_reply_and_one_over_the_limit_closes()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "20");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        await client.SendAsync("NOOP " + new string('x', 20_000) + "\nNOOP\n");
        (await client.ReadReplyAsync()).Should().MatchRegex("^[25]", "a 20,000-byte line comes in more than one read");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        await client.SendAsync("NOOP " + new string('x', 40_000) + "\nNOOP\n");
        (await client.ReadReplyAsync()).Should().StartWith("500");
        (await client.ReadReplyAsync()).Should().BeNull();
    }
}
