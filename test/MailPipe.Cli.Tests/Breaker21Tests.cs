using System.IO.Pipelines;
using System.Text;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The CLI run as a user runs it, on inputs earlier rounds had not tried (session 10, breaker21): each test here
/// failed before the change it came with, unless its summary says it is a probe that held.
/// </summary>
public class Breaker21Tests
{
    /// <summary>
    /// An option that takes one value, given twice, is a usage error (exit 1, one line, nothing sent) as the README
    /// says of every usage problem. <c>--from</c>, <c>--subject</c>, <c>--body</c> and <c>--auth</c> given twice were
    /// read by the send command's combination check before the parser's own error was reported: an unhandled
    /// <c>InvalidOperationException</c> with a stack trace, exit 134.
    /// </summary>
    [Theory]
    [InlineData("--from", "a@example.test", "--from", "b@example.test", "m.eml")]
    [InlineData("--subject", "a", "--subject", "b", "m.eml")]
    [InlineData("--body", "a", "--body", "b", "m.eml")]
    [InlineData("--auth", "PLAIN", "--auth", "LOGIN", "--user", "u", "--password-env", "HOME", "--server", "127.0.0.1:1", "m.eml")]
    [InlineData("-f", "a@example.test", "-f", "b@example.test", "--to", "c@example.test")]
    public async Task A_single_value_option_given_twice_is_a_usage_error_not_a_crash(params string[] args)
    {
        using var dir = new TempDirectory();
        var file = dir.File("m.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n");
        var run = await CliRunner.RunAsync(["send", .. args.Select(a => a == "m.eml" ? file : a)]);

        run.ExitCode.Should().Be(1);
        run.Output.Should().BeEmpty();
        run.Error.Should().Contain($"Option '{args[0]}' expects a single argument but 2 were provided");
        run.Error.Should().NotContain("   at ");
    }

    /// <summary>
    /// README: "a larger one has its header section read, and is opened again when it is sent [...]; one that changed
    /// in between (another length or write time) is not sent", and "a file that cannot be read [...] is reported [...]
    /// as not sent with exit 1, and the others still go". A file over 1 MiB that changed while the batch waited for
    /// the server was found changed only at its first body read, after MAIL, RCPT, DATA and its header section had
    /// gone out: with DATA the connection had to be closed, so every later message of the batch was not sent either,
    /// and the changed file was reported with exit 2 (a connection failure). The file is now checked before its MAIL:
    /// it alone is not sent (exit 1, an input error), and the rest of the batch goes.
    /// </summary>
    [Fact]
    public async Task A_large_file_changed_before_its_turn_is_not_sent_and_the_rest_of_the_batch_goes()
    {
        using var dir = new TempDirectory();
        var large = dir.File("large.eml", [.. "From: a@example.test\r\nTo: b@example.test\r\nSubject: large\r\n\r\n"u8, .. Body(2 << 20)]);
        var small = dir.File("small.eml", "From: a@example.test\r\nTo: c@example.test\r\nSubject: small\r\n\r\nsmall\r\n");
        await using var server = new ScriptedSmtpServer("220 scripted.test", command =>
        {
            if (command.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase))
            {
                // The files were read before the connection; the large one changes before it is sent.
                File.AppendAllText(large, "appended\r\n");
            }

            return ScriptedSmtpServer.AcceptAll(command);
        });

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", large, small);

        var lines = run.OutputLines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Where(l => l.GetProperty("type").GetString() == "message").ToArray();
        var largeResult = lines.Single(l => l.GetProperty("file").GetString() == large);
        largeResult.GetProperty("outcome").GetString().Should().Be("notSent");
        largeResult.GetProperty("exitCode").GetInt32().Should().Be(1);
        largeResult.GetProperty("error").GetString().Should().Contain("changed");
        var smallResult = lines.Single(l => l.GetProperty("file").GetString() == small);
        smallResult.GetProperty("outcome").GetString().Should().Be("accepted");
        run.ExitCode.Should().Be(1);
        server.Commands.Where(c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().ContainSingle("the changed file never starts a transaction");
        server.Commands.Count(c => c.Equals("DATA", StringComparison.OrdinalIgnoreCase)).Should().Be(1);
    }

    /// <summary>
    /// README: "Ctrl+C or SIGTERM stops a batch", and a second one "ends the process at once". While the messages were
    /// still being read (standard input or a FIFO whose writer had not finished: <c>tail -f | mailpipe send -</c>, a
    /// generator that hangs) the first Ctrl+C or SIGTERM was taken (the process was not ended) and nothing looked at
    /// it: the process went on waiting for its input for as long as the input stayed open, and only a second signal
    /// ended it, with no word. It now stops at the first: nothing is sent, standard error says so, exit 2 (not sent).
    /// </summary>
    [Fact]
    public async Task Ctrl_C_while_standard_input_is_still_open_stops_at_once_and_sends_nothing()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        var input = new Pipe();
        await input.Writer.WriteAsync("From: a@example.test\r\nTo: b@example.test\r\nSubject: half\r\n\r\nthe first half\r\n"u8.ToArray());
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var environment = new CliEnvironment(() => new SignallingStream(input.Reader.AsStream(), reading), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new StringWriter();
        var error = new StringWriter();
        using var interrupt = new CancellationTokenSource();

        var run = Task.Run(() => Program.RunAsync(["send", "--server", server.Address, "-"], output, error, environment, interrupt.Token));
        await reading.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await interrupt.CancelAsync(); // Ctrl+C; the input stays open
        try
        {
            var code = await run.WaitAsync(TimeSpan.FromSeconds(30)); // a hang guard: the run must end without more input
            code.Should().Be(2);
            error.ToString().Should().Contain("interrupted").And.Contain("nothing was sent");
            server.Connected.Should().BeFalse();
        }
        finally
        {
            await input.Writer.CompleteAsync();
        }
    }

    /// <summary>
    /// <c>--helo-name</c> takes "a domain name or address literal". A bare IPv4 address was taken and sent as an
    /// address literal (<c>[127.0.0.1]</c>, issue #17: a bare IP is invalid after EHLO), but a bare IPv6 address was
    /// a usage error; and names that are neither were sent as they were: empty or hyphen-edged labels
    /// (<c>a..b</c>, <c>-lead.example</c>), bracketed text that is no address literal (<c>[1]</c>, <c>[127.1]</c>,
    /// an IPv4 address marked <c>IPv6:</c>), which a server answers with 501 and the session is refused (exit 2).
    /// </summary>
    [Theory]
    [InlineData("::1", "EHLO [IPv6:::1]")]
    [InlineData("127.0.0.1", "EHLO [127.0.0.1]")]
    [InlineData("[::1]", "EHLO [IPv6:::1]")]
    [InlineData("[IPv6:2001:db8::1]", "EHLO [IPv6:2001:db8::1]")]
    [InlineData("mail_relay.example.test", "EHLO mail_relay.example.test")]
    [InlineData("a..b", null)]
    [InlineData("-lead.example", null)]
    [InlineData("trail-.example", null)]
    [InlineData("example.", null)]
    [InlineData("[1]", null)]
    [InlineData("[127.1]", null)]
    [InlineData("[IPv6:127.0.0.1]", null)]
    [InlineData("[]", null)]
    public async Task The_helo_name_is_a_domain_or_an_address_and_nothing_else_is_sent(string name, string? ehlo)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        var run = await CliRunner.RunAsync("probe", "--server", server.Address, "--helo-name", name);

        if (ehlo is null)
        {
            run.ExitCode.Should().Be(1, run.Output + run.Error);
            run.Error.Should().Contain("--helo-name").And.Contain("is not a domain name or address literal");
            server.Connected.Should().BeFalse();
        }
        else
        {
            run.ExitCode.Should().Be(0, run.Output + run.Error);
            server.Commands.Should().Contain(ehlo);
        }
    }

    /// <summary>
    /// A file whose name is not UTF-8 (a Latin-1 <c>é</c>, byte 0xE9, from an old archive or a Windows share) cannot
    /// be opened by .NET, which decodes file names as UTF-8 and has no way back to the bytes. In a directory it was
    /// listed and reported as "Could not find file", with the name mangled, beside a file <c>ls</c> shows: the message
    /// now says why and what to do (the others still go, as for any file that cannot be read).
    /// </summary>
    [Fact]
    public async Task A_file_whose_name_is_not_UTF8_is_reported_as_such_not_as_missing()
    {
        using var dir = new TempDirectory();
        var good = dir.File("good.eml", "From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n");
        using (var copy = System.Diagnostics.Process.Start("sh", ["-c", "cp \"$1\" \"$(printf '%s/lat\\351n1.eml' \"$2\")\"", "sh", good, dir.Path])!)
        {
            await copy.WaitForExitAsync();
            copy.ExitCode.Should().Be(0);
        }

        await using var server = await TestSmtpServer.StartAsync();
        var run = await CliRunner.RunAsync("send", "--server", server.Address, dir.Path);

        run.ExitCode.Should().Be(1);
        run.Output.Should().Contain("good.eml: accepted");
        run.Output.Should().Contain("not valid UTF-8").And.NotContain("Could not find file");
        server.Messages.Should().ContainSingle();
    }

    /// <summary>
    /// Probe that held, and the documentation fixed to it: a connection lost while a message's data is being written
    /// (before its end) leaves nothing the server can deliver, so the message is not sent (exit 2), not "outcome
    /// unknown" (exit 7) as the README's exit-code table said ("the connection failed once the data had started");
    /// 7 is for a message whose end of data was written and whose reply never came.
    /// </summary>
    [Fact]
    public async Task A_connection_lost_inside_the_data_is_not_sent_exit_2_not_unknown()
    {
        using var dir = new TempDirectory();
        // Far more than the socket buffers between the two can hold (the client's send buffer grows to tcp_wmem's
        // 4 MiB here, and the server's receive buffer is kept small): with 4 MiB, the whole message and its end of
        // data could be in the kernel before the reset, and then "unknown" is the right answer (it failed here 2 runs in 3).
        var large = dir.File("large.eml", [.. "From: a@example.test\r\nTo: b@example.test\r\n\r\n"u8, .. Body(16 << 20)]);
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Server.ReceiveBufferSize = 64 * 1024;
        listener.Start();
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            await using var stream = client.GetStream();
            using var reader = new StreamReader(stream, Encoding.ASCII, false, 1, leaveOpen: true);
            async Task Reply(string text) => await stream.WriteAsync(Encoding.ASCII.GetBytes(text + "\r\n"));
            await Reply("220 scripted.test");
            while (await reader.ReadLineAsync() is { } line)
            {
                if (line.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase))
                {
                    await Reply("250 scripted.test");
                }
                else if (line.Equals("DATA", StringComparison.OrdinalIgnoreCase))
                {
                    await Reply("354 go ahead");
                    var buffer = new byte[64 * 1024];
                    await stream.ReadAtLeastAsync(buffer, buffer.Length); // some of the data, then the connection is lost
                    client.Client.LingerState = new System.Net.Sockets.LingerOption(true, 0);
                    return;
                }
                else
                {
                    await Reply("250 ok");
                }
            }
        });

        var run = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{((System.Net.IPEndPoint)listener.LocalEndpoint).Port}", "--json", large);
        await serve;

        using var json = System.Text.Json.JsonDocument.Parse(run.OutputLines[0]);
        json.RootElement.GetProperty("outcome").GetString().Should().Be("notSent", run.Output);
        json.RootElement.GetProperty("exitCode").GetInt32().Should().Be(2);
        run.ExitCode.Should().Be(2);
    }

    /// <summary>
    /// <c>serve --help</c> said of <c>--max-size</c> that "a larger one gets 552 and the connection is closed"; the
    /// README says, and the server does (Breaker14Tests: the next transaction on the same connection is saved), that
    /// the connection stays usable, and only data that goes on past where such a message must have ended is closed.
    /// </summary>
    [Fact]
    public async Task Serve_help_says_what_max_size_does_to_the_connection()
    {
        var run = await CliRunner.RunAsync("serve", "--help");

        var line = run.Output.Split('\n').Single(l => l.TrimStart().StartsWith("--max-size", StringComparison.Ordinal));
        line.Should().Contain("552").And.Contain("stays usable").And.NotContain("552 and the connection is closed");
    }

    /// <summary>
    /// A file over 1 MiB is streamed, not scanned beforehand; to a server without 8BITMIME (RFC 6152) MailPipe scans
    /// it while sending and at its first 8-bit octet abandons it, which over DATA means closing the connection: every
    /// later message of the batch was not sent (exit 2) with it. Such a file is now scanned before its MAIL when the
    /// server lacks 8BITMIME: it alone is not sent (exit 6, the server lacks 8BITMIME), and the batch goes on.
    /// </summary>
    [Fact]
    public async Task A_large_8bit_file_to_a_server_without_8BITMIME_is_not_sent_and_the_rest_of_the_batch_goes()
    {
        using var dir = new TempDirectory();
        var large = dir.File("large.eml", [.. "From: a@example.test\r\nTo: b@example.test\r\n\r\n"u8, .. Body(2 << 20), .. "caf\u00e9\r\n"u8]);
        var small = dir.File("small.eml", "From: a@example.test\r\nTo: c@example.test\r\n\r\nsmall\r\n");
        var delivered = 0;
        await using var server = new ScriptedSmtpServer(
            "220 scripted.test",
            command => command.StartsWith("EHLO", StringComparison.OrdinalIgnoreCase) ? "250-scripted.test\r\n250 PIPELINING" : ScriptedSmtpServer.AcceptAll(command),
            data =>
            {
                Interlocked.Increment(ref delivered);
                return "250 2.0.0 queued";
            });

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", large, small);

        var lines = run.OutputLines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement).Where(l => l.GetProperty("type").GetString() == "message").ToArray();
        var largeResult = lines.Single(l => l.GetProperty("file").GetString() == large);
        largeResult.GetProperty("outcome").GetString().Should().Be("notSent", run.Output);
        largeResult.GetProperty("exitCode").GetInt32().Should().Be(6);
        largeResult.GetProperty("error").GetString().Should().Contain("8BITMIME");
        lines.Single(l => l.GetProperty("file").GetString() == small).GetProperty("outcome").GetString().Should().Be("accepted", run.Output);
        delivered.Should().Be(1);
        server.Commands.Where(c => c.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase)).Should().ContainSingle("the 8-bit file never starts a transaction");
    }

    /// <summary>
    /// Probe that held: large files (streamed, not read whole) with bare-CR, bare-LF and CRLF line ends, a
    /// <c>--header</c> field and a Bcc field, sent to <c>mailpipe serve</c> in one batch: each saved file is the input
    /// with its line ends made CRLF, the field in front and the Bcc field gone, byte for byte, and the Bcc recipient
    /// still got it.
    /// </summary>
    [Fact]
    public async Task Large_files_with_any_line_ends_reach_serve_byte_for_byte_with_the_header_in_front_and_no_Bcc()
    {
        using var files = new TempDirectory();
        using var inbox = new TempDirectory();
        string[] ends = ["\r", "\n", "\r\n"];
        var paths = ends.Select((end, i) => files.File($"m{i}.eml", Encoding.ASCII.GetBytes(
            string.Join(end, "From: a@example.test", "To: b@example.test", "Bcc: hidden@example.test", $"Subject: {i}", "", string.Concat(Enumerable.Repeat(new string('q', 76) + end, 20_000)))))).ToArray();
        await using var serve = await ServeHost.StartAsync(inbox.Path);

        var run = await CliRunner.RunAsync(["send", "--server", serve.Address, "--header", "X-Added: 1", .. paths]);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        (await serve.WaitForLinesAsync("hidden@example.test", 3)).Should().HaveCount(3);
        var saved = Directory.GetFiles(inbox.Path).Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        saved.Should().HaveCount(3);
        for (var i = 0; i < 3; i++)
        {
            var expected = "X-Added: 1\r\nFrom: a@example.test\r\nTo: b@example.test\r\n" + $"Subject: {i}\r\n\r\n" + string.Concat(Enumerable.Repeat(new string('q', 76) + "\r\n", 20_000));
            var bytes = Encoding.ASCII.GetBytes(expected);
            saved.Count(s => s.SequenceEqual(bytes)).Should().Be(1, $"m{i}.eml, with line ends {ends[i].Length}");
        }
    }

    /// <summary>A stream that says when it is first read.</summary>
    private sealed class SignallingStream(Stream inner, TaskCompletionSource reading) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            reading.TrySetResult();
            return inner.Read(buffer, offset, count);
        }

        public override int Read(Span<byte> buffer)
        {
            reading.TrySetResult();
            return inner.Read(buffer);
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            reading.TrySetResult();
            return inner.ReadAsync(buffer, cancellationToken);
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static byte[] Body(int size)
    {
        var line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\r\n"u8.ToArray();
        var body = new byte[size / line.Length * line.Length];
        for (var i = 0; i < body.Length; i += line.Length)
        {
            line.CopyTo(body, i);
        }

        return body;
    }
}
