using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The CLI tried by a new user and an independent checker (session 9, breaker14): each test here failed before the
/// change it came with.
/// </summary>
public class Breaker14Tests
{
    /// <summary>
    /// <c>serve --max-size</c> is the largest message taken, advertised as SIZE. SmtpServer's own limit counted the
    /// whole read buffer (the terminating dot and any command pipelined after it included), and when it fired inside
    /// the data its 552 was swallowed (SmtpServer's DATA command drops the exception) and the server went on waiting
    /// for input: a message of exactly the advertised size (sent with <c>MAIL ... SIZE=</c> that got 250), or a few
    /// bytes over it, hung its client until the idle timeout, then got 421 instead of 250 or 552. The limit counts
    /// the message as SIZE does (RFC 1870), without the dots that SMTP doubles.
    /// </summary>
    [Fact]
    public async Task A_message_of_exactly_the_size_limit_is_saved_and_one_byte_more_gets_552_at_once()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--max-size", "1K");
        var exact = Message(1024);
        var dotted = DottedMessage(1024);
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test> SIZE=1024\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            (await client.ReadReplyAsync()).Should().Contain("SIZE 1024");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("354");
            await client.SendAsync([.. exact, .. ".\r\n"u8]);
            (await client.ReadReplyAsync()).Should().StartWith("250 2.0.0 saved as");

            await client.SendAsync("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("354");
            await client.SendAsync([.. Message(1025), .. ".\r\n"u8]);
            (await client.ReadReplyAsync()).Should().StartWith("552");

            // SIZE counts the message, not SMTP's doubled dots (RFC 1870 §3): a message of the limit whose lines start
            // with dots is taken, although it is longer on the wire.
            await client.SendAsync("MAIL FROM:<a@example.test> SIZE=1024\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("250");
            (await client.ReadReplyAsync()).Should().StartWith("354");
            await client.SendAsync([.. Stuffed(dotted), .. ".\r\n"u8]);
            (await client.ReadReplyAsync()).Should().StartWith("250 2.0.0 saved as");
        }

        // A message under the limit followed at once by pipelined commands (the next transaction) is taken whole.
        var small = Message(1000);
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 4; i++)
            {
                await client.ReadReplyAsync();
            }

            await client.SendAsync([.. small, .. ".\r\n"u8, .. Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("NOOP\r\n", 8))), .. "QUIT\r\n"u8]);
            (await client.ReadReplyAsync()).Should().StartWith("250 2.0.0 saved as");
            for (var i = 0; i < 8; i++)
            {
                (await client.ReadReplyAsync()).Should().StartWith("250");
            }

            (await client.ReadReplyAsync()).Should().StartWith("221");
        }

        var saved = Directory.GetFiles(dir.Path).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        saved.Should().BeEquivalentTo([exact, dotted, small]);
    }

    /// <summary>
    /// With files and no <c>--to</c>, the envelope comes from the header fields, as <c>sendmail -t</c> reads them; a
    /// <c>--header</c> field goes in front of those fields, so it is part of the header section that is sent. It was
    /// left out of the envelope: a message on standard input given its From and To with <c>--header</c> was refused
    /// ("the message has no From or Sender field"), and a <c>Cc</c> added with <c>--header</c> was shown to every
    /// recipient and sent to nobody.
    /// </summary>
    [Fact]
    public async Task Header_fields_given_with_header_count_for_the_envelope_read_from_the_fields()
    {
        using var dir = new TempDirectory();
        using var input = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        var bare = input.File("bare.eml", "Subject: no envelope fields\r\n\r\nbody\r\n");
        var run = await CliRunner.RunAsync(
            "send", "--server", serve.Address, "--header", "From: a@example.test", "--header", "To: b@example.test", "--header", "Cc: c@example.test", bare);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        (await serve.WaitForLinesAsync("from <a@example.test> to <b@example.test>, <c@example.test>:", 1)).Should().HaveCount(1);
        var saved = Directory.GetFiles(dir.Path).Should().ContainSingle().Subject;
        File.ReadAllText(saved).Should().Be(
            "From: a@example.test\r\nTo: b@example.test\r\nCc: c@example.test\r\nSubject: no envelope fields\r\n\r\nbody\r\n");
    }

    /// <summary>
    /// <c>serve</c> prints the envelope it received. SmtpServer hands over a quoted local part without its quotes, and
    /// the line and the JSON showed <c>"john smith"@example.test</c> as <c>john smith@example.test</c> and
    /// <c>"x@y"@example.test</c> as <c>x@y@example.test</c>: addresses that were never received, or are not addresses.
    /// </summary>
    [Fact]
    public async Task Serve_prints_a_quoted_local_part_as_it_was_received()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--json");
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync(
                "EHLO raw.example\r\nMAIL FROM:<\"john smith\"@example.test>\r\nRCPT TO:<\"x@y\"@example.test>\r\n" +
                "RCPT TO:<plain.name+tag@example.test>\r\nRCPT TO:<\"q\\\"x\"@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 5; i++)
            {
                (await client.ReadReplyAsync()).Should().StartWith("2");
            }

            (await client.ReadReplyAsync()).Should().StartWith("354");
            await client.SendAsync("Subject: quoted\r\n\r\nbody\r\n.\r\nQUIT\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250");
        }

        var line = (await serve.WaitForLinesAsync("\"type\":\"message\"", 1)).Should().ContainSingle().Subject;
        using var json = System.Text.Json.JsonDocument.Parse(line);
        json.RootElement.GetProperty("from").GetString().Should().Be("\"john smith\"@example.test");
        json.RootElement.GetProperty("to").EnumerateArray().Select(e => e.GetString()).Should().Equal("\"x@y\"@example.test", "plain.name+tag@example.test", "\"q\\\"x\"@example.test");
    }

    /// <summary>
    /// A message that is one empty line (CRLF, then the terminating dot) was saved as an empty file, size 0: SmtpServer
    /// hands the data over without the CRLF that ends its last line, and the store put it back only after a non-empty
    /// line. The saved file is the data as received.
    /// </summary>
    [Fact]
    public async Task A_message_of_one_empty_line_is_saved_as_that_line()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 4; i++)
            {
                await client.ReadReplyAsync();
            }

            await client.SendAsync("\r\n.\r\nQUIT\r\n");
            (await client.ReadReplyAsync()).Should().StartWith("250 2.0.0 saved as");
        }

        File.ReadAllBytes(Directory.GetFiles(dir.Path).Should().ContainSingle().Subject).Should().Equal("\r\n"u8.ToArray());
        (await serve.WaitForLinesAsync(": 2 bytes saved to ", 1)).Should().ContainSingle();
    }

    /// <summary>
    /// A value of <c>serve</c>'s number options that is not a number (<c>--idle-timeout 30s</c>, as <c>send --timeout</c>
    /// takes it) crashed the tool: an unhandled InvalidOperationException with a stack trace, exit 134 (the defect #15
    /// fixed for <c>--timeout</c>). Each is a usage error on one line naming the option, exit 1, nothing listens.
    /// </summary>
    [Theory]
    [InlineData("--idle-timeout", "abc")]
    [InlineData("--idle-timeout", "-5")]
    [InlineData("--max-recipients", "x")]
    [InlineData("--max-recipients", "0")]
    [InlineData("--max-connections", "1e3")]
    [InlineData("--max-connections", "10001")]
    public async Task A_bad_number_for_serve_is_a_usage_error_naming_the_option(string option, string value)
    {
        using var dir = new TempDirectory();
        var run = await CliRunner.RunAsync("serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path, option, value);

        run.ExitCode.Should().Be(1);
        run.Output.Should().BeEmpty();
        run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Should().StartWith($"mailpipe serve: {option}: ");
    }

    /// <summary><c>--idle-timeout</c> takes the durations <c>send --timeout</c> takes (seconds, or with ms, s, m, h).</summary>
    [Fact]
    public async Task Serve_idle_timeout_takes_a_duration_with_a_unit()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "500ms");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220");
        (await client.ReadReplyAsync()).Should().StartWith("421 4.4.2", "the client said nothing for longer than the idle timeout");
    }

    /// <summary>
    /// An empty path (<c>--ca-file "$CA"</c> with the variable unset) crashed the tool: an unhandled
    /// InvalidOperationException, exit 134, for <c>--ca-file</c> and <c>--tls-cert</c>; "Unhandled exception:
    /// System.ArgumentException" with a stack trace for <c>--save-dir</c> and serve's certificate files. Each is a
    /// usage error on one line naming the option, exit 1.
    /// </summary>
    [Theory]
    [InlineData("send", "--ca-file", "--server", "127.0.0.1:1", "--starttls")]
    [InlineData("send", "--tls-cert", "--server", "127.0.0.1:1", "--starttls")]
    [InlineData("probe", "--ca-file", "--server", "127.0.0.1:1")]
    [InlineData("probe", "--tls-cert", "--server", "127.0.0.1:1")]
    [InlineData("send", "--save-dir", "--from", "a@example.test")]
    [InlineData("serve", "--save-dir", "--listen", "127.0.0.1:0")]
    [InlineData("serve", "--tls-cert", "--listen", "127.0.0.1:0")]
    [InlineData("serve", "--tls-cert-out", "--listen", "127.0.0.1:0", "--starttls")]
    public async Task An_empty_path_is_a_usage_error_naming_the_option(string command, string option, params string[] more)
    {
        string[] args = command == "send" ? [command, option, "", "--to", "b@example.test", "--subject", "x", .. more] : [command, option, "", .. more];
        if (command == "send" && !more.Contains("--from"))
        {
            args = [.. args, "--from", "a@example.test"];
        }

        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Error);
        run.Error.Should().NotContain("Unhandled").And.NotContain(" at ");
        run.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0].Should().StartWith($"mailpipe {command}: {option}: ");
    }

    /// <summary>
    /// An option whose value was forgotten (<c>mailpipe send m.eml --to</c>, or <c>--from -- m.eml</c>) crashed the
    /// tool: the command's combination check read the option's value, which had not parsed (an unhandled
    /// InvalidOperationException, exit 134). The parser's own error is the answer: one line, exit 1.
    /// </summary>
    [Theory]
    [InlineData("send", "m.eml", "--to")]
    [InlineData("send", "m.eml", "--from")]
    [InlineData("send", "m.eml", "-f")]
    [InlineData("send", "m.eml", "--auth")]
    [InlineData("send", "m.eml", "--subject", "--")]
    [InlineData("send", "m.eml", "--body")]
    [InlineData("send", "--server", "127.0.0.1:1", "m.eml", "--timeout")]
    [InlineData("probe", "--server", "127.0.0.1:1", "--timeout")]
    [InlineData("probe", "--server")]
    [InlineData("serve", "--listen", "127.0.0.1:0", "--max-size")]
    [InlineData("serve", "--listen", "127.0.0.1:0", "--auth-user")]
    public async Task An_option_without_its_value_is_a_usage_error(params string[] args)
    {
        var run = await CliRunner.RunAsync(args);

        run.ExitCode.Should().Be(1, run.Error);
        run.Error.Should().NotContain("Unhandled").And.NotContain(" at ");
        run.Error.Should().StartWith($"mailpipe {args[0]}: ");
    }

    /// <summary>
    /// A file over 1 MiB has its header section read before the connection and is opened again for its body when it
    /// is sent. Rewritten in between, it went out as a mix (the envelope and header section of the old file, the body
    /// of the new one from the old offset, more bytes than the SIZE declared) and was reported accepted. It is not
    /// sent: its content no longer is what was read.
    /// </summary>
    [Fact]
    public async Task A_large_file_rewritten_after_it_was_read_is_not_sent_as_a_mix()
    {
        using var dir = new TempDirectory();
        var path = dir.File("large.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: AAAA\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('a', 76) + "\r\n", 20_000)));
        using var ehlo = new SemaphoreSlim(0);
        using var rewritten = new ManualResetEventSlim();
        byte[]? received = null;
        await using var server = new ScriptedSmtpServer(
            "220 scripted.test",
            command =>
            {
                if (command.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase))
                {
                    // The files were read before the connection: hold the session until the file is rewritten.
                    ehlo.Release();
                    rewritten.Wait(TimeSpan.FromSeconds(30));
                }

                return ScriptedSmtpServer.AcceptAll(command);
            },
            data =>
            {
                received = data;
                return "250 2.0.0 queued";
            });

        var run = CliRunner.RunAsync("send", "--server", server.Address, "--json", path);
        (await ehlo.WaitAsync(TimeSpan.FromSeconds(30))).Should().BeTrue();
        File.WriteAllText(path, "X-Other: header\r\nSubject: BBBB\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('b', 76) + "\r\n", 30_000)));
        rewritten.Set();
        var result = await run;

        received.Should().BeNull("no message made of two files may be delivered");
        using var json = System.Text.Json.JsonDocument.Parse(result.OutputLines[0]);
        json.RootElement.GetProperty("outcome").GetString().Should().Be("notSent", result.Output);
        json.RootElement.GetProperty("error").GetString().Should().Contain("changed");
        result.ExitCode.Should().NotBe(0);
    }

    /// <summary>
    /// A message file saved by an editor with a UTF-8 byte order mark was refused as having "no From or Sender field",
    /// which it visibly has: the mark hides the first field's name. With <c>--from</c> and <c>--to</c> it went out,
    /// mark and all, as a broken first header field. It is an input error that says so, and nothing is sent.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_file_that_starts_with_a_byte_order_mark_is_refused_saying_so(bool envelopeGiven)
    {
        using var dir = new TempDirectory();
        using var input = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        var path = input.File("bom.eml", [0xEF, 0xBB, 0xBF, .. "From: a@example.test\r\nTo: b@example.test\r\nSubject: bom\r\n\r\nhi\r\n"u8]);
        string[] envelope = envelopeGiven ? ["--from", "a@example.test", "--to", "b@example.test"] : [];
        var run = await CliRunner.RunAsync(["send", "--server", serve.Address, .. envelope, path]);

        run.ExitCode.Should().Be(1);
        run.Output.Should().Contain("byte order mark");
        Directory.GetFiles(dir.Path).Should().BeEmpty();
    }

    /// <summary>
    /// When <c>serve</c> stops, a session that has not ended in the grace time was cancelled inside SmtpServer, which
    /// answered "221 The session has be cancelled." to a client between commands (a 2yz that a pipelining client takes
    /// as the reply to its next command) and "554" (permanent: do not retry) to a message in progress, which was not
    /// saved. A server that closes the channel says 421 (RFC 5321 §3.8), and a message cut off then may be sent again.
    /// </summary>
    [Fact]
    public async Task Sessions_still_open_when_serve_stops_get_421_not_221_or_554()
    {
        using var dir = new TempDirectory();
        var serve = await ServeHost.StartAsync(dir.Path);
        await using var idle = await RawSmtpClient.ConnectAsync(serve.Port);
        await using var sending = await RawSmtpClient.ConnectAsync(serve.Port);
        (await idle.ReadReplyAsync()).Should().StartWith("220");
        (await sending.ReadReplyAsync()).Should().StartWith("220");
        await sending.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
        for (var i = 0; i < 3; i++)
        {
            await sending.ReadReplyAsync();
        }

        (await sending.ReadReplyAsync()).Should().StartWith("354");
        await sending.SendAsync("Subject: cut off\r\n\r\nhalf a message");

        (await serve.StopAsync()).Should().Be(0);
        await serve.DisposeAsync();

        (await idle.ReadReplyAsync()).Should().StartWith("421 4.3.2");
        (await sending.ReadReplyAsync()).Should().StartWith("421 4.3.2");
        Directory.GetFiles(dir.Path).Should().BeEmpty();
    }

    /// <summary>A message of <paramref name="size"/> bytes whose body lines all start with a dot.</summary>
    private static byte[] DottedMessage(int size)
    {
        var message = Message(size);
        var bodyStart = message.AsSpan().IndexOf("\r\n\r\n"u8) + 4;
        message[bodyStart] = (byte)'.';
        for (var i = bodyStart; i < message.Length - 2; i++)
        {
            if (message[i] == '\n')
            {
                message[i + 1] = (byte)'.';
            }
        }

        return message;
    }

    /// <summary>The message as it goes on the wire: a line that starts with a dot gets a second one (RFC 5321 §4.5.2).</summary>
    private static byte[] Stuffed(byte[] message)
    {
        var wire = new List<byte>(message.Length + (message.Length / 3));
        for (var i = 0; i < message.Length; i++)
        {
            if (message[i] == '.' && (i == 0 || message[i - 1] == '\n'))
            {
                wire.Add((byte)'.');
            }

            wire.Add(message[i]);
        }

        return [.. wire];
    }

    /// <summary>A message of <paramref name="size"/> bytes with CRLF line ends, ending with CRLF.</summary>
    private static byte[] Message(int size)
    {
        var head = "From: a@example.test\r\nTo: b@example.test\r\nSubject: size\r\n\r\n"u8.ToArray();
        var body = new byte[size - head.Length];
        body.AsSpan().Fill((byte)'x');
        for (var i = 77; i < body.Length - 2; i += 78)
        {
            body[i - 1] = (byte)'\r';
            body[i] = (byte)'\n';
        }

        body[^2] = (byte)'\r';
        body[^1] = (byte)'\n';
        return [.. head, .. body];
    }
}
