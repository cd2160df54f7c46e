using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace MailPipe.Cli.Tests;

/// <summary><c>mailpipe serve</c>: what it saves, prints, offers, and how it treats hostile clients.</summary>
public class ServeCommandTests
{
    [Theory]
    [InlineData("127.0.0.1:0", "127.0.0.1", 0)]
    [InlineData(":0", "127.0.0.1", 0)]
    [InlineData(":2600", "127.0.0.1", 2600)]
    [InlineData("localhost", "localhost", 2525)]
    [InlineData("[::1]:0", "::1", 0)]
    [InlineData("0.0.0.0:25", "0.0.0.0", 25)]
    public void Listen_values_parse(string value, string host, int port)
    {
        ServeCommand.TryParseListen(value, out var parsedHost, out var parsedPort, out var error).Should().BeTrue(error);
        parsedHost.Should().Be(host);
        parsedPort.Should().Be(port);
    }

    [Theory]
    [InlineData("::1:25")]
    [InlineData("127.0.0.1:65536")]
    [InlineData("127.0.0.1:x")]
    [InlineData("[::1")]
    public void Bad_listen_values_are_refused(string value) =>
        ServeCommand.TryParseListen(value, out _, out _, out _).Should().BeFalse();

    [Theory]
    [InlineData("1", 1)]
    [InlineData("10K", 10 * 1024)]
    [InlineData("25M", 25 * 1024 * 1024)]
    public void Sizes_parse(string value, int bytes)
    {
        ServeCommand.TryParseSize(value, out var parsed).Should().BeTrue();
        parsed.Should().Be(bytes);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("2048M")]
    [InlineData("ten")]
    public void Bad_sizes_are_refused(string value) => ServeCommand.TryParseSize(value, out _).Should().BeFalse();

    [Fact]
    public async Task Help_lists_every_option_with_its_default()
    {
        var run = await CliRunner.RunAsync("serve", "--help");

        run.ExitCode.Should().Be(0);
        foreach (var option in new[] { "--listen", "--save-dir", "--starttls", "--tls-cert", "--tls-key", "--tls-cert-out", "--auth", "--auth-user", "--auth-password-env", "--auth-required", "--max-size", "--max-recipients", "--idle-timeout", "--max-connections", "--json" })
        {
            run.Output.Should().Contain(option);
        }

        run.Output.Should().Contain("[default: 127.0.0.1:2525]").And.Contain("[default: ./mailpipe-inbox]").And.Contain("[default: 25M]").And.Contain("[default: 1000]").And.Contain("[default: 300]").And.Contain("[default: 100]").And.Contain("Default off");
    }

    [Fact]
    public async Task Saved_file_is_the_data_on_the_wire_unstuffed_and_is_there_before_the_250()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220 ");
        await client.SendAsync("EHLO raw.example\r\n");
        (await client.ReadReplyAsync()).Should().Contain("PIPELINING").And.Contain("SIZE 26214400");

        // The first line stuffed too: SmtpServer alone kept its dot (it looks for CRLF "..").
        await client.SendAsync("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("354");
        await client.SendAsync("..first line\r\nSubject: x\r\n\r\n..\r\n...three\r\n.a.b.\r\nlast\r\n.\r\n");
        var reply = await client.ReadReplyAsync();

        reply.Should().MatchRegex(@"^250 2\.0\.0 saved as \d{8}T\d{6}Z-1\.eml$");
        var file = Directory.GetFiles(dir.Path).Should().ContainSingle().Subject;
        (await File.ReadAllTextAsync(file)).Should().Be(".first line\r\nSubject: x\r\n\r\n.\r\n..three\r\n.a.b.\r\nlast\r\n");
        var line = (await serve.WaitForLinesAsync("from <a@example.test>", 1)).Should().ContainSingle().Subject;
        line.Should().Contain("from <a@example.test> to <b@example.test>: 52 bytes saved to " + file);
    }

    [Fact]
    public async Task Replies_to_a_pipelined_group_leave_in_one_segment()
    {
        // The stall of issue #16: one small segment per reply, Nagle and the client's delayed ACK. Now the server
        // sends what it holds only when it would wait for the client, so one receive gets the whole group.
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        await client.ReadReplyAsync();
        await client.SendAsync("EHLO raw.example\r\n");
        await client.ReadReplyAsync();

        await client.SendAsync("MAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nRCPT TO:<c@example.test>\r\nDATA\r\n");
        var received = await client.ReceiveOnceAsync();

        received.Should().Be("250 Ok\r\n250 Ok\r\n250 Ok\r\n354 end with <CRLF>.<CRLF>\r\n");
    }

    [Fact]
    public async Task Files_sent_with_mailpipe_send_are_saved_with_Bcc_removed_and_line_ends_normalised()
    {
        using var dir = new TempDirectory();
        var inbox = Path.Combine(dir.Path, "inbox");
        var first = dir.File("one.eml", "From: Jane <jane@example.test>\nTo: bob@example.test\nBcc: hidden@example.test\nSubject: one\n\n.leading dot\nBcc: body line\n");
        var second = dir.File("two.eml", "From: jane@example.test\r\nTo: \"Smith, Carol\" <carol@example.test>\r\nSubject: =?utf-8?q?zw=C3=B6lf?=\r\n\r\nGrüße\r\n");
        await using var serve = await ServeHost.StartAsync(inbox);

        var run = await CliRunner.RunAsync("send", "--server", serve.Address, first, second);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var lines = await serve.WaitForLinesAsync("saved to", 2);
        lines.Should().HaveCount(2);
        lines[0].Should().MatchRegex(@"from <jane@example\.test> to <bob@example\.test>, <hidden@example\.test>: 100 bytes saved to .*-1\.eml \(127\.0\.0\.1:\d+\)$");
        lines[1].Should().Contain("from <jane@example.test> to <carol@example.test>: ");
        var saved = SavedFiles(inbox);
        (await File.ReadAllTextAsync(saved[0])).Should().Be("From: Jane <jane@example.test>\r\nTo: bob@example.test\r\nSubject: one\r\n\r\n.leading dot\r\nBcc: body line\r\n");
        (await File.ReadAllBytesAsync(saved[1])).Should().Equal(await File.ReadAllBytesAsync(second));
    }

    [Fact]
    public async Task Mailpipe_send_pipelines_its_transactions_to_serve()
    {
        using var dir = new TempDirectory();
        var first = dir.File("a.eml", "From: a@example.test\r\nTo: b@example.test\r\nSubject: 1\r\n\r\none\r\n");
        var second = dir.File("b.eml", "From: a@example.test\r\nTo: c@example.test, d@example.test\r\nSubject: 2\r\n\r\ntwo\r\n");
        await using var serve = await ServeHost.StartAsync(dir.Path + "/inbox");

        var run = await CliRunner.RunAsync("send", "--server", serve.Address, "--trace", first, second);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var transcript = run.Error.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("C: ", StringComparison.Ordinal) || l.StartsWith("S: ", StringComparison.Ordinal)).ToList();
        var mail = transcript.FindIndex(l => l.StartsWith("C: MAIL FROM", StringComparison.Ordinal));
        transcript.Skip(mail).Take(4).Should().Equal(transcript[mail], "C: RCPT TO:<***@example.test>", "C: DATA", "S: 250 Ok");
        var secondMail = transcript.FindIndex(mail + 1, l => l.StartsWith("C: MAIL FROM", StringComparison.Ordinal));
        transcript.Skip(secondMail).Take(4).Should().Equal(transcript[secondMail], "C: RCPT TO:<***@example.test>", "C: RCPT TO:<***@example.test>", "C: DATA");
        (await serve.WaitForLinesAsync("saved to", 2)).Should().HaveCount(2);
    }

    [Fact]
    public async Task A_connection_over_the_limit_gets_421_and_the_others_go_on()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--max-connections", "1");
        await using var first = await RawSmtpClient.ConnectAsync(serve.Port);
        (await first.ReadReplyAsync()).Should().StartWith("220 ");

        await using (var second = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            (await second.ReadRepliesToEndAsync()).Should().Equal("421 4.7.0 too many connections, try again later");
        }

        await first.SendAsync("NOOP\r\n");
        (await first.ReadReplyAsync()).Should().StartWith("250");
    }

    [Fact]
    public async Task Json_prints_one_object_per_line()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--json");

        var run = await CliRunner.RunAsync("send", "--server", serve.Address, "--from", "a@example.test", "--to", "b@example.test", "--to", "c@example.test", "--subject", "s", "--body", "hello");
        run.ExitCode.Should().Be(0, run.Output + run.Error);
        var line = (await serve.WaitForLinesAsync("\"type\":\"message\"", 1)).Should().ContainSingle().Subject;
        (await serve.StopAsync()).Should().Be(0);

        using (var listening = JsonDocument.Parse(serve.Lines[0]))
        {
            listening.RootElement.GetProperty("type").GetString().Should().Be("listening");
            listening.RootElement.GetProperty("port").GetInt32().Should().Be(serve.Port);
            listening.RootElement.GetProperty("starttls").GetBoolean().Should().BeFalse();
        }

        using (var message = JsonDocument.Parse(line))
        {
            var root = message.RootElement;
            root.GetProperty("from").GetString().Should().Be("a@example.test");
            root.GetProperty("to").EnumerateArray().Select(e => e.GetString()).Should().Equal("b@example.test", "c@example.test");
            var file = root.GetProperty("file").GetString()!;
            root.GetProperty("size").GetInt64().Should().Be(new FileInfo(file).Length);
            root.GetProperty("tls").GetBoolean().Should().BeFalse();
            root.GetProperty("user").ValueKind.Should().Be(JsonValueKind.Null);
        }

        using var stopped = JsonDocument.Parse(serve.Lines[^1]);
        stopped.RootElement.GetProperty("type").GetString().Should().Be("stopped");
        stopped.RootElement.GetProperty("messages").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task Starttls_with_a_generated_certificate_works_with_mailpipe_send_trusting_the_written_certificate()
    {
        using var dir = new TempDirectory();
        var certificate = Path.Combine(dir.Path, "serve-cert.pem");
        var inbox = Path.Combine(dir.Path, "inbox");
        await using var serve = await ServeHost.StartAsync(inbox, "--starttls", "--tls-cert-out", certificate);
        serve.Lines[0].Should().Contain("STARTTLS (certificate SHA-256 ");

        var run = await CliRunner.RunAsync("send", "--server", serve.Address, "--starttls", "--ca-file", certificate, "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "over TLS");

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain("TLS");
        (await serve.WaitForLinesAsync(", TLS\\)$", 1)).Should().ContainSingle();
        (await File.ReadAllTextAsync(SavedFiles(inbox).Single())).Should().EndWith("\r\n\r\nover TLS\r\n");
    }

    /// <summary>
    /// serve's --auth-password-env drops one trailing line end as send's --password-env does (a variable filled from a
    /// file): a password variable "s3cret" CRLF for serve used to refuse the client's "s3cret" (535).
    /// </summary>
    [Fact]
    public async Task Serve_drops_one_line_end_at_the_end_of_its_password_variable()
    {
        using var dir = new TempDirectory();
        var serverVariable = "MAILPIPE_SERVE_TEST_" + Guid.NewGuid().ToString("N");
        var clientVariable = serverVariable + "_CLIENT";
        Environment.SetEnvironmentVariable(serverVariable, "s3cret\r\n");
        Environment.SetEnvironmentVariable(clientVariable, "s3cret");
        try
        {
            var inbox = Path.Combine(dir.Path, "inbox");
            await using var serve = await ServeHost.StartAsync(inbox, "--auth-user", "alice", "--auth-password-env", serverVariable, "--auth-required");

            var run = await CliRunner.RunAsync("send", "--server", serve.Address, "--auth", "PLAIN", "--allow-cleartext-auth", "--user", "alice", "--password-env", clientVariable, "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "x");

            run.ExitCode.Should().Be(0, run.Output + run.Error);
            SavedFiles(inbox).Should().ContainSingle();
        }
        finally
        {
            Environment.SetEnvironmentVariable(serverVariable, null);
            Environment.SetEnvironmentVariable(clientVariable, null);
        }
    }

    [Fact]
    public async Task Starttls_with_a_given_certificate_and_auth_of_one_user_work_with_mailpipe_send()
    {
        using var dir = new TempDirectory();
        var (certificatePath, keyPath) = WritePemPair(dir);
        var variable = "MAILPIPE_SERVE_TEST_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "s3cret pass");
        try
        {
            var inbox = Path.Combine(dir.Path, "inbox");
            await using var serve = await ServeHost.StartAsync(inbox, "--tls-cert", certificatePath, "--tls-key", keyPath, "--auth-user", "alice", "--auth-password-env", variable, "--auth-required");
            serve.Lines[0].Should().Contain("AUTH one user, required");

            var good = await CliRunner.RunAsync("send", "--server", serve.Address, "--starttls", "--ca-file", certificatePath, "--auth", "PLAIN", "--user", "alice", "--password-env", variable, "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "authenticated");
            good.ExitCode.Should().Be(0, good.Output + good.Error);
            (await serve.WaitForLinesAsync(", TLS, AUTH alice\\)$", 1)).Should().ContainSingle();

            Environment.SetEnvironmentVariable(variable + "_WRONG", "wrong");
            var wrong = await CliRunner.RunAsync("send", "--server", serve.Address, "--starttls", "--ca-file", certificatePath, "--auth", "LOGIN", "--user", "alice", "--password-env", variable + "_WRONG", "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "x");
            wrong.ExitCode.Should().Be(ExitCodes.AuthenticationFailed, wrong.Output + wrong.Error);

            var anonymous = await CliRunner.RunAsync("send", "--server", serve.Address, "--starttls", "--ca-file", certificatePath, "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "x");
            anonymous.ExitCode.Should().Be(ExitCodes.SenderRefused, anonymous.Output + anonymous.Error);
            anonymous.Output.Should().Contain("530");
            SavedFiles(inbox).Should().ContainSingle();
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
            Environment.SetEnvironmentVariable(variable + "_WRONG", null);
        }
    }

    [Fact]
    public async Task Auth_is_never_offered_without_auth_even_after_starttls()
    {
        using var dir = new TempDirectory();
        await using (var plain = await ServeHost.StartAsync(dir.Path))
        await using (var client = await RawSmtpClient.ConnectAsync(plain.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\n");
            (await client.ReadReplyAsync()).Should().NotContain("AUTH").And.NotContain("STARTTLS");
        }

        await using var tls = await ServeHost.StartAsync(dir.Path, "--starttls");
        var (exitCode, error) = await RunPythonAsync($$"""
            import smtplib, ssl
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            s = smtplib.SMTP("127.0.0.1", {{tls.Port}}, timeout=30)
            s.ehlo(); assert s.has_extn("starttls") and not s.has_extn("auth")
            s.starttls(context=ctx); s.ehlo(); assert not s.has_extn("auth"), s.esmtp_features
            s.quit()
            """);
        exitCode.Should().Be(0, error);
    }

    [Fact]
    public async Task Swaks_with_starttls_auth_and_pipelining_delivers_byte_for_byte()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--starttls", "--auth");
        var body = "Subject: from swaks\r\n\r\nline one\r\n.dotted\r\nline three\r\n";
        var swaks = await CliRunner.RunExternalAsync("swaks", body, "--server", serve.Address, "--tls", "--auth", "PLAIN", "--auth-user", "bob", "--auth-password", "pw", "--pipeline", "--from", "s@example.test", "--to", "r1@example.test,r2@example.test", "--data", "-");
        // swaks reads the message from standard input with --data -.
        swaks.ExitCode.Should().Be(0, swaks.Output);
        swaks.Output.Should().Contain("PIPELINING").And.Contain("235").And.Contain("250 2.0.0 saved as");

        var line = (await serve.WaitForLinesAsync("saved to", 1)).Should().ContainSingle().Subject;
        line.Should().Contain("from <s@example.test> to <r1@example.test>, <r2@example.test>").And.EndWith(", TLS, AUTH bob)");
        // swaks sends CRLF "." CRLF after the data, whose last line already ends with CRLF: an empty line on the wire.
        (await File.ReadAllTextAsync(SavedFiles(dir.Path).Single())).Should().Be(body + "\r\n");
    }

    [Fact]
    public async Task Python_smtplib_pipelines_nothing_but_gets_starttls_and_auth_login()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--starttls", "--auth");
        var script = $$"""
            import smtplib, ssl
            ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            s = smtplib.SMTP("127.0.0.1", {{serve.Port}}, timeout=30)
            s.ehlo(); assert s.has_extn("starttls") and not s.has_extn("auth")
            s.starttls(context=ctx); s.ehlo(); assert s.has_extn("pipelining")
            s.login("carol", "pw", initial_response_ok=False)
            s.sendmail("p@example.test", ["q@example.test"], b"Subject: py\r\n\r\n.one\r\ntwo\r\n")
            s.quit()
            """;
        var (exitCode, error) = await RunPythonAsync(script);

        exitCode.Should().Be(0, error);
        (await serve.WaitForLinesAsync("AUTH carol", 1)).Should().ContainSingle();
        (await File.ReadAllTextAsync(SavedFiles(dir.Path).Single())).Should().Be("Subject: py\r\n\r\n.one\r\ntwo\r\n");
    }

    [Fact]
    public async Task An_endless_command_line_gets_500_and_a_closed_connection_and_the_server_goes_on()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<");
            var chunk = Encoding.ASCII.GetBytes(new string('a', 16 * 1024));
            try
            {
                // Far more than the 32 KiB line limit (the 25 MiB message limit would take SmtpServer alone to the end):
                // the server must stop reading long before, or these sends would block.
                for (var sent = 0; sent < 16 * 1024 * 1024; sent += chunk.Length)
                {
                    await client.SendAsync(chunk);
                }
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Reset by the server: the connection is closed.
            }

            var replies = await client.ReadRepliesToEndAsync();
            replies.Should().NotBeEmpty();
            replies[0].Should().StartWith("250-localhost");
            replies.Skip(1).Should().OnlyContain(r => r == "500 5.5.2 line too long, closing the connection");
        }

        await AssertStillServesAsync(serve);
    }

    [Fact]
    public async Task A_line_longer_than_a_command_may_be_is_taken_inside_a_message()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        await client.ReadReplyAsync();
        await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
        for (var i = 0; i < 4; i++)
        {
            await client.ReadReplyAsync();
        }

        var longLine = new string('z', 100 * 1024);
        await client.SendAsync("Subject: long\r\n\r\n" + longLine + "\r\n.\r\nQUIT\r\n");

        (await client.ReadReplyAsync()).Should().StartWith("250 2.0.0 saved as");
        (await client.ReadReplyAsync()).Should().StartWith("221");
        (await File.ReadAllTextAsync(SavedFiles(dir.Path).Single())).Should().Be("Subject: long\r\n\r\n" + longLine + "\r\n");
    }

    [Fact]
    public async Task A_flood_of_recipients_gets_452_then_a_closed_connection()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--max-recipients", "10");
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            var flood = new StringBuilder("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\n");
            for (var i = 0; i < 5000; i++)
            {
                flood.Append("RCPT TO:<r").Append(i).Append("@example.test>\r\n");
            }

            try
            {
                await client.SendAsync(flood.ToString());
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Closed before all of it was read.
            }

            var replies = await client.ReadRepliesToEndAsync();
            replies.Count.Should().BeLessThan(100, "the server closes after a few refusals in a row");
            replies.Skip(2).Take(10).Should().OnlyContain(r => r.StartsWith("250", StringComparison.Ordinal));
            replies.Skip(12).Should().NotBeEmpty().And.OnlyContain(r => r.StartsWith("452 4.5.3 too many recipients", StringComparison.Ordinal));
        }

        await AssertStillServesAsync(serve);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_gets_552_and_is_not_saved()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--max-size", "10K");
        await using (var declared = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await declared.ReadReplyAsync();
            await declared.SendAsync("EHLO raw.example\r\n");
            (await declared.ReadReplyAsync()).Should().Contain("SIZE 10240");
            await declared.SendAsync("MAIL FROM:<a@example.test> SIZE=20000\r\n");
            (await declared.ReadReplyAsync()).Should().StartWith("552");
        }

        await using (var undeclared = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await undeclared.ReadReplyAsync();
            await undeclared.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            await undeclared.ReadReplyAsync();
            await undeclared.ReadReplyAsync();
            await undeclared.ReadReplyAsync();
            (await undeclared.ReadReplyAsync()).Should().StartWith("354");
            try
            {
                for (var i = 0; i < 1000; i++)
                {
                    await undeclared.SendAsync(new string('x', 998) + "\r\n");
                }

                await undeclared.SendAsync(".\r\n");
            }
            catch (System.Net.Sockets.SocketException)
            {
                // Closed by the server.
            }

            var replies = await undeclared.ReadRepliesToEndAsync();
            replies.Should().NotBeEmpty().And.OnlyContain(r => r.StartsWith("552", StringComparison.Ordinal));
        }

        Directory.GetFiles(dir.Path).Should().BeEmpty();
        await AssertStillServesAsync(serve);
    }

    [Fact]
    public async Task A_client_that_stops_mid_data_gets_421_after_the_idle_timeout_and_nothing_is_saved()
    {
        using var dir = new TempDirectory();
        // 5 s: the client's own steps (EHLO after the greeting, the content after 354) must not take longer on a loaded machine.
        await using var serve = await ServeHost.StartAsync(dir.Path, "--idle-timeout", "5");
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 4; i++)
            {
                await client.ReadReplyAsync();
            }

            await client.SendAsync("Subject: cut\r\n\r\nhalf a mess");
            var replies = await client.ReadRepliesToEndAsync();

            replies.Should().Equal("421 4.4.2 idle timeout, closing the connection");
        }

        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            // Gone in the middle of the data: nothing is saved either.
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 4; i++)
            {
                await client.ReadReplyAsync();
            }

            await client.SendAsync("Subject: cut\r\n\r\nhalf");
            client.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            await client.ReadRepliesToEndAsync();
        }

        Directory.GetFiles(dir.Path).Should().BeEmpty();
        await AssertStillServesAsync(serve);
    }

    [Fact]
    public async Task Commands_sent_after_starttls_before_the_handshake_are_never_executed()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--starttls");
        await using (var client = await RawSmtpClient.ConnectAsync(serve.Port))
        {
            await client.ReadReplyAsync();
            await client.SendAsync("EHLO raw.example\r\n");
            await client.ReadReplyAsync();
            await client.SendAsync("STARTTLS\r\nMAIL FROM:<injected@example.test>\r\n");
            var replies = await client.ReadRepliesToEndAsync();

            replies.Should().Equal("220 ready when you are");
        }

        await AssertStillServesAsync(serve);
    }

    [Fact]
    public async Task A_port_in_use_is_exit_code_2()
    {
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path);

        var run = await CliRunner.RunAsync("serve", "--listen", serve.Address, "--save-dir", dir.Path);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed);
        run.Error.Should().Contain($"cannot listen on {serve.Address}");

        // The default 127.0.0.1:2525 is taken wherever a test MTA runs: the way out is said.
        run.Error.Should().Contain("--listen :0 picks a free one");
    }

    [Fact]
    public async Task Sigterm_stops_the_process_cleanly_with_exit_code_0()
    {
        using var dir = new TempDirectory();
        var assembly = typeof(ServeCommand).Assembly.Location;
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { assembly, "serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        first.Should().Contain("listening on 127.0.0.1:");
        var port = int.Parse(Regex.Match(first!, @":(\d+),").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        var send = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", "--from", "a@example.test", "--to", "b@example.test", "--subject", "s", "--body", "b");
        send.ExitCode.Should().Be(0, send.Output + send.Error);

        using (var kill = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        var rest = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        process.ExitCode.Should().Be(0, await process.StandardError.ReadToEndAsync());
        rest.Should().Contain("mailpipe serve: stopped; 1 message saved");
    }

    [Fact]
    public async Task The_warm_up_session_before_listening_saves_and_prints_nothing()
    {
        // EmbeddedServer runs one session (EHLO, MAIL, RCPT, RSET, QUIT) through itself before it says it listens.
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(dir.Path, "--json", "--max-connections", "1");

        (await serve.StopAsync()).Should().Be(0);

        serve.Lines.Should().HaveCount(2);
        serve.Lines[0].Should().Contain("\"type\":\"listening\"");
        serve.Lines[1].Should().Contain("\"type\":\"stopped\"").And.Contain("\"messages\":0");
        Directory.GetFiles(dir.Path).Should().BeEmpty();
    }

    [Fact]
    public async Task As_its_own_process_a_client_stopped_mid_data_holds_up_no_other_client()
    {
        // The tool's own process runs socket continuations on the runtime's epoll threads (Program.PreferInlineSocketCompletions):
        // nothing done there may wait for another socket. One client stops in the middle of its message; another sends
        // a batch through the same server meanwhile, and the first one's message is still taken when it goes on.
        using var dir = new TempDirectory();
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { typeof(ServeCommand).Assembly.Location, "serve", "--listen", "127.0.0.1:0", "--save-dir", dir.Path })
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment.Remove("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS");
        using var process = Process.Start(start)!;
        try
        {
            var first = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var port = int.Parse(Regex.Match(first!, @":(\d+),").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            await using var stalled = await RawSmtpClient.ConnectAsync(port);
            await stalled.ReadReplyAsync();
            await stalled.SendAsync("EHLO raw.example\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<stalled@example.test>\r\nDATA\r\n");
            for (var i = 0; i < 4; i++)
            {
                await stalled.ReadReplyAsync();
            }

            await stalled.SendAsync("Subject: stalled\r\n\r\nhalf a mess");

            using var messages = new TempDirectory();
            for (var i = 0; i < 20; i++)
            {
                messages.File($"m{i:D2}.eml", $"From: a@example.test\r\nTo: r{i}@example.test\r\nSubject: {i}\r\n\r\nbody {i}\r\n");
            }

            var send = await CliRunner.RunAsync("send", "--server", $"127.0.0.1:{port}", messages.Path).WaitAsync(TimeSpan.FromSeconds(60));
            send.ExitCode.Should().Be(0, send.Output + send.Error);

            await stalled.SendAsync("age\r\n.\r\n");
            (await stalled.ReadReplyAsync()).Should().StartWith("250 ");
            Directory.GetFiles(dir.Path).Should().HaveCount(21);
        }
        finally
        {
            process.Kill();
            await process.WaitForExitAsync();
        }
    }

    private static async Task<(int ExitCode, string Error)> RunPythonAsync(string script)
    {
        var start = new ProcessStartInfo("python3") { RedirectStandardInput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        await process.StandardInput.WriteAsync(script.ReplaceLineEndings("\n"));
        process.StandardInput.Close();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, error);
    }

    private static string[] SavedFiles(string directory) =>
        [.. Directory.GetFiles(directory, "*.eml").OrderBy(f => int.Parse(Regex.Match(f, @"-(\d+)\.eml$").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture))];

    private static async Task AssertStillServesAsync(ServeHost serve)
    {
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);
        (await client.ReadReplyAsync()).Should().StartWith("220 ");
        await client.SendAsync("NOOP\r\nQUIT\r\n");
        (await client.ReadReplyAsync()).Should().StartWith("250");
        (await client.ReadReplyAsync()).Should().StartWith("221");
    }

    private static (string Certificate, string Key) WritePemPair(TempDirectory dir)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
        return (dir.File("given-cert.pem", certificate.ExportCertificatePem()), dir.File("given-key.pem", key.ExportPkcs8PrivateKeyPem()));
    }
}
