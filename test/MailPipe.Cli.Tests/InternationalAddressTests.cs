using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Internationalized addresses (RFC 6531: UTF-8 local parts and domains, sent with SMTPUTF8) through <c>mailpipe
/// serve</c> and the embedded server of <c>send</c>.
/// </summary>
public class InternationalAddressTests
{
    private const string From = "jöran@bücher.example";
    private const string To = "δοκιμή@παράδειγμα.δοκιμή";

    /// <summary>
    /// SmtpServer decodes a path's local part as UTF-8 but its domain as ASCII, every non-ASCII octet a '?':
    /// <c>serve</c> printed <c>jöran@b??cher.example</c> and a Greek domain as a row of '?' (in the text line and in
    /// <c>--json</c>), although the client's SMTPUTF8 MAIL and RCPT carried them in UTF-8.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Serve_prints_utf8_domains_and_local_parts_as_sent(bool json)
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, json ? ["--json"] : []);

        var run = await CliRunner.RunAsync("send", "-s", serve.Address, "-f", From, "-t", To, "-t", "\"ü z\"@bücher.example", "--subject", "hi", "--body", "hello");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var line = (await serve.WaitForLinesAsync(json ? "\"type\":\"message\"" : "saved to", 1)).Should().ContainSingle().Subject;
        if (json)
        {
            using var document = JsonDocument.Parse(line);
            document.RootElement.GetProperty("from").GetString().Should().Be(From);
            document.RootElement.GetProperty("to").EnumerateArray().Select(e => e.GetString()).Should().Equal(To, "\"ü z\"@bücher.example");
        }
        else
        {
            line.Should().Contain($"from <{From}> to <{To}>, <\"ü z\"@bücher.example>").And.NotContain("?");
        }
    }

    /// <summary>
    /// The domain is taken from the command line as it came: a quoted local part holding '@' and '>' does not move
    /// it, and two domains that differ only in their non-ASCII letters (the same under SmtpServer's '?' decoding)
    /// each keep their own, recipient by recipient, over two transactions on one connection.
    /// </summary>
    [Fact]
    public async Task Serve_keeps_each_recipients_own_domain_with_quoted_local_parts_and_pipelining()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        await client.ReadReplyAsync();
        await client.SendAsync("EHLO raw.example\r\n");
        (await client.ReadReplyAsync()).Should().Contain("SMTPUTF8");
        foreach (var (from, to) in new[] { ("\"a>@b\"@bücher.example", "x@bächer.example"), ("y@bächer.example", "z@bücher.example") })
        {
            await client.SendAsync($"MAIL FROM:<{from}> SMTPUTF8\r\nRCPT TO:<{to}>\r\nRCPT TO:<@relay.example:w@bücher.example>\r\nDATA\r\n");
            for (var i = 0; i < 3; i++)
            {
                (await client.ReadReplyAsync()).Should().StartWith("250");
            }

            (await client.ReadReplyAsync()).Should().StartWith("354");
            await client.SendAsync("Subject: x\r\n\r\nbody\r\n.\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250");
        }

        var lines = await serve.WaitForLinesAsync("saved to", 2);
        lines.Should().HaveCount(2);
        lines[0].Should().Contain("from <\"a>@b\"@bücher.example> to <x@bächer.example>, <w@bücher.example>:");
        lines[1].Should().Contain("from <y@bächer.example> to <z@bücher.example>, <w@bücher.example>:");
    }

    /// <summary>
    /// SmtpServer unescapes a quoted local part with <c>Regex.Unescape</c>: <c>"\u0041dmin"@example.test</c> (a
    /// quoted pair per RFC 5321 §4.1.2, the local part <c>u0041dmin</c>) was printed as <c>Admin@example.test</c>, another
    /// sender than the one sent, and <c>"a\tb"</c> as a tab. The mailbox is printed as the client wrote it.
    /// </summary>
    [Fact]
    public async Task Serve_prints_quoted_pairs_as_sent_not_as_regex_escapes()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--json");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        await client.ReadReplyAsync();
        await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<\"\\u0041dmin\"@example.test>\r\nRCPT TO:<\"a\\tb\"@example.test>\r\nRCPT TO:<\"a\\\\b\\\"c\"@example.test>\r\nDATA\r\n");
        await client.ReadReplyAsync();
        for (var i = 0; i < 3; i++)
        {
            (await client.ReadReplyAsync()).Should().StartWith("250");
        }

        (await client.ReadReplyAsync()).Should().StartWith("354");
        await client.SendAsync("Subject: x\r\n\r\nbody\r\n.\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");

        var line = (await serve.WaitForLinesAsync("\"type\":\"message\"", 1)).Should().ContainSingle().Subject;
        using var document = JsonDocument.Parse(line);
        document.RootElement.GetProperty("from").GetString().Should().Be("\"\\u0041dmin\"@example.test");
        document.RootElement.GetProperty("to").EnumerateArray().Select(e => e.GetString()).Should().Equal("\"a\\tb\"@example.test", "\"a\\\\b\\\"c\"@example.test");
    }
}
