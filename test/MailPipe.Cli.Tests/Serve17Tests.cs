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

    private static int ClosedPort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static string[] ThreeMessages(TempDirectory dir)
    {
        var files = new string[3];
        for (var i = 0; i < files.Length; i++)
        {
            files[i] = Path.Combine(dir.Path, $"m{i}.eml");
            File.WriteAllText(files[i], $"From: a@example.test\r\nTo: b@example.test\r\nSubject: {i}\r\n\r\nbody\r\n");
        }

        return files;
    }

    /// <summary>
    /// The progress line (standard error a terminal) counted every message with an outcome in its msgs/s, refused and
    /// unsent ones too, while the summary counts accepted ones: a batch that all failed showed hundreds of msgs/s, then
    /// 0.00 messages/s. Both count accepted messages now.
    /// </summary>
    [Fact]
    public async Task The_progress_rate_counts_accepted_messages_as_the_summary_does()
    {
        using var dir = new TempDirectory();
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var environment = new CliEnvironment(() => Stream.Null, OutputIsTerminal: false, ErrorIsTerminal: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var code = await Program.RunAsync(["send", "--server", $"127.0.0.1:{ClosedPort()}", .. ThreeMessages(dir)], output, error, environment, timeout.Token);

        code.Should().Be(2, output.ToString() + error);
        output.ToString().Should().Contain("0 accepted").And.Contain("0.00 messages/s");
        var progress = error.ToString().Split('\r').Last(p => p.Contains("msgs/s", StringComparison.Ordinal));
        progress.Should().MatchRegex(@"3/3 messages, [^\n]*\b0 msgs/s\n", "nothing was accepted: " + progress);
    }

    /// <summary>
    /// The text summary said "not usable (see the error above)" while that error went to standard error: standard
    /// output in a file held no reason. The summary's connection line now carries it; on one terminal it is said once.
    /// </summary>
    [Fact]
    public async Task The_summary_says_why_the_connection_was_not_usable()
    {
        using var dir = new TempDirectory();
        var port = ClosedPort();
        var redirected = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "b");
        redirected.ExitCode.Should().Be(2);
        redirected.Output.Should().NotContain("see the error above")
            .And.MatchRegex("connection: 127\\.0\\.0\\.1:[0-9]+, not usable: .*connection refused");
        redirected.Error.Should().Contain("connection refused", "standard error still says it when it is not the same terminal");

        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };
        var environment = new CliEnvironment(() => Stream.Null, OutputIsTerminal: true, ErrorIsTerminal: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Program.RunAsync(["send", "--server", $"127.0.0.1:{port}", .. ThreeMessages(dir)], output, error, environment, timeout.Token);
        var both = output.ToString() + error;
        both.Split("connection refused").Length.Should().Be(2, "on one terminal the reason is shown once: " + both);
    }
}
