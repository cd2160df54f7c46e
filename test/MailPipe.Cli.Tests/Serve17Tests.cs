namespace MailPipe.Cli.Tests;

/// <summary>Items of session 17's CLI breaker in <c>mailpipe serve</c>.</summary>
public class Serve17Tests
{
    /// <summary>
    /// RFC 5321 §4.1.1.3 and §4.5.1: a server must accept the reserved mailbox Postmaster without a domain, in any
    /// case. SmtpServer's parser wants a domain and answered 502; the message is saved like any other, the recipient
    /// printed as the client wrote it, and the same path with parameters, a bare LF or pipelined works alike.
    /// </summary>
    [Theory]
    [InlineData("RCPT TO:<postmaster>\r\n", "postmaster")]
    [InlineData("RCPT TO:<PostMaster>\n", "PostMaster")]
    [InlineData("rcpt to: <POSTMASTER>\r\n", "POSTMASTER")]
    public async Task Rcpt_to_postmaster_without_a_domain_is_accepted_and_the_message_saved(string rcpt, string printed)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "20");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        await client.SendAsync("EHLO raw.example\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        await client.SendAsync("MAIL FROM:<a@example.test>\r\n" + rcpt + "RCPT TO:<b@example.test>\r\nDATA\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("250", "Postmaster needs no domain (RFC 5321 §4.5.1)");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("354");
        await client.SendAsync("Subject: to the postmaster\r\n\r\nhello\r\n.\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        await client.SendAsync("QUIT\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("221");

        var lines = await serve.WaitForLinesAsync(" saved to ", 1);
        lines.Should().ContainSingle().Which.Should().Contain($"to <{printed}>, <b@example.test>");
        Directory.GetFiles(dir.Path).Should().ContainSingle().Which.Should().Match(f => File.ReadAllText(f).Contains("hello", StringComparison.Ordinal));
    }

    /// <summary>Only the bare Postmaster is special: another local part without a domain is still refused, and so is a MAIL FROM:&lt;postmaster&gt;.</summary>
    [Theory]
    [InlineData("RCPT TO:<postmasterx>\r\n")]
    [InlineData("RCPT TO:<webmaster>\r\n")]
    public async Task Another_mailbox_without_a_domain_is_still_refused(string rcpt)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "20");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\n" + rcpt);
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("5");
    }
}
