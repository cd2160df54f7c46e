using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests.Peer;

/// <summary><c>mailpipe serve</c> and <c>mailpipe probe</c> as processes, and <c>send</c> without --server.</summary>
[Collection(PeerCollection.Name)]
public class PeerServeProbeTests
{
    [Fact]
    public async Task Serve_saves_each_message_byte_for_byte_and_prints_one_line_for_it()
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        await using var serve = await ServeProcess.StartAsync(inbox);
        var content = "From: a@example.test\r\nTo: b@example.test, c@example.test\r\nBcc: d@example.test\r\nSubject: s\r\n\r\n.dot\r\nend\r\n";
        var file = files.Write("m.eml", content);

        var run = await Tool.RunAsync("send", "-s", serve.Address, file);

        run.ExitCode.Should().Be(0, run.ToString());
        var line = await serve.WaitForLineAsync(" saved to ");
        line.Should().MatchRegex(@"^\d\d:\d\d:\d\d from <a@example\.test> to <b@example\.test>, <c@example\.test>, <d@example\.test>: \d+ bytes saved to .+\.eml \(127\.0\.0\.1:\d+\)$");
        var saved = Directory.GetFiles(inbox).Should().ContainSingle().Subject;
        Path.GetFileName(saved).Should().MatchRegex(@"^\d{8}T\d{6}Z-\d+\.eml$");
        File.ReadAllBytes(saved).Should().Equal(Encoding.ASCII.GetBytes(content.Replace("Bcc: d@example.test\r\n", "", StringComparison.Ordinal)));
        line.Should().Contain($"{new FileInfo(saved).Length} bytes");
    }

    [Fact]
    public async Task Serve_json_prints_the_documented_objects_and_stopped_with_the_count()
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        var serve = await ServeProcess.StartAsync(inbox, null, "--json", "--max-size", "1M", "--max-recipients", "5");
        try
        {
            var listening = JsonDocument.Parse(serve.Lines[0]).RootElement;
            listening.GetProperty("type").GetString().Should().Be("listening");
            listening.GetProperty("address").GetString().Should().Be("127.0.0.1");
            listening.GetProperty("port").GetInt32().Should().Be(serve.Port);
            listening.GetProperty("maxSize").GetInt64().Should().Be(1024 * 1024);
            listening.GetProperty("maxRecipients").GetInt32().Should().Be(5);
            listening.GetProperty("starttls").GetBoolean().Should().BeFalse();
            listening.GetProperty("auth").GetString().Should().Be("off");
            listening.GetProperty("authRequired").GetBoolean().Should().BeFalse();
            listening.GetProperty("saveDir").GetString().Should().Be(inbox);

            var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "-t", "c@example.test", "--body", "x");
            run.ExitCode.Should().Be(0, run.ToString());

            var message = JsonDocument.Parse(await serve.WaitForLineAsync("\"type\":\"message\"")).RootElement;
            message.EnumerateObject().Select(p => p.Name).Should().BeEquivalentTo("type", "time", "from", "to", "size", "file", "client", "tls", "user");
            message.GetProperty("from").GetString().Should().Be("a@example.test");
            message.GetProperty("to").EnumerateArray().Select(t => t.GetString()).Should().Equal("b@example.test", "c@example.test");
            message.GetProperty("size").GetInt64().Should().Be(new FileInfo(message.GetProperty("file").GetString()!).Length);
        }
        finally
        {
            (await serve.StopAsync()).Should().Be(0, serve.Error);
            var stopped = JsonDocument.Parse(await serve.WaitForLineAsync("\"type\":\"stopped\"")).RootElement;
            stopped.GetProperty("messages").GetInt32().Should().Be(1);
            await serve.DisposeAsync();
        }
    }

    [Fact]
    public async Task Serve_stops_on_SIGTERM_with_exit_0_and_says_how_many_it_saved()
    {
        using var files = new Files();
        var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"));
        await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "1");
        await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "2");

        (await serve.StopAsync()).Should().Be(0, serve.Error);

        (await serve.WaitForLineAsync("stopped")).Should().Be("mailpipe serve: stopped; 2 messages saved");
        await serve.DisposeAsync();
    }

    [Fact]
    public async Task Serve_max_size_refuses_a_larger_message_with_552_exit_6_and_saves_nothing()
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        await using var serve = await ServeProcess.StartAsync(inbox, null, "--max-size", "1K");

        var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", new string('x', 4000));
        var small = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "small");

        run.ExitCode.Should().Be(6, run.ToString());
        small.ExitCode.Should().Be(0, small.ToString());
        Directory.GetFiles(inbox).Should().ContainSingle();
    }

    [Fact]
    public async Task Serve_max_recipients_refuses_the_extra_ones_with_452_and_takes_the_message()
    {
        using var files = new Files();
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--max-recipients", "2");

        var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "-t", "c@example.test", "-t", "d@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        // The one refused with 452 4.5.3 (too many) gets the message in a follow-up transaction (RFC 5321 §4.5.3.1.10).
        run.Output.Should().Contain("in 2 transactions").And.Contain("to <d@example.test>: 250").And.NotContain("452 4.5.3");
        (await serve.WaitForLineAsync(" saved to ")).Should().Contain("to <b@example.test>, <c@example.test>:");
        (await serve.WaitForLineAsync(" saved to ", 2)).Should().Contain("to <d@example.test>:");
    }

    [Fact]
    public async Task Serve_auth_required_refuses_MAIL_with_530_and_a_user_with_its_password_gets_through()
    {
        using var files = new Files();
        var environment = new Dictionary<string, string?> { ["PEER_SERVE_PW"] = "serve-secret\n" };
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), environment, "--auth-user", "alice", "--auth-password-env", "PEER_SERVE_PW", "--auth-required", "--starttls", "--tls-cert-out", Path.Combine(files.Path, "serve.pem"));

        var anonymous = await Tool.RunAsync("send", "-s", serve.Address, "--starttls", "--ca-file", Path.Combine(files.Path, "serve.pem"), "-f", "a@example.test", "-t", "b@example.test", "--body", "x");
        var wrong = await Tool.RunAsync(
            ["send", "-s", serve.Address, "--starttls", "--ca-file", Path.Combine(files.Path, "serve.pem"), "--user", "alice", "--password-env", "PW", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"],
            null,
            new Dictionary<string, string?> { ["PW"] = "other" });
        var right = await Tool.RunAsync(
            ["send", "-s", serve.Address, "--starttls", "--ca-file", Path.Combine(files.Path, "serve.pem"), "--user", "alice", "--password-env", "PW", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"],
            null,
            new Dictionary<string, string?> { ["PW"] = "serve-secret" });

        anonymous.ExitCode.Should().Be(4, anonymous.ToString());
        anonymous.Output.Should().Contain("530");
        wrong.ExitCode.Should().Be(3, wrong.ToString());
        right.ExitCode.Should().Be(0, right.ToString());
        right.Output.Should().Contain("authenticated as alice (PLAIN)");
        (await serve.WaitForLineAsync(" saved to ")).Should().Contain("alice").And.Contain("TLS");
        serve.Lines[0].Should().Contain("SHA-256");
    }

    [Fact]
    public async Task Serve_auth_is_offered_only_after_STARTTLS()
    {
        using var files = new Files();
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--auth", "--starttls");

        var probe = await Tool.RunAsync("probe", "-s", serve.Address, "--accept-name-mismatch", "--json");

        var report = probe.Json.Single();
        report.GetProperty("ehlo").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).Should().NotContain(e => e!.StartsWith("AUTH", StringComparison.Ordinal));
        report.GetProperty("startTlsOffered").GetBoolean().Should().BeTrue();
    }

    [Fact]
    public async Task Serve_on_a_port_in_use_exits_2_and_suggests_listen_0()
    {
        using var files = new Files();
        await using var first = await ServeProcess.StartAsync(Path.Combine(files.Path, "a"));

        var second = await Tool.RunAsync(["serve", "--listen", first.Address, "--save-dir", Path.Combine(files.Path, "b")], null, timeout: TimeSpan.FromSeconds(30));

        second.ExitCode.Should().Be(2, second.ToString());
        second.Error.Should().Contain("--listen :0");
    }

    [Fact]
    public async Task Serve_with_an_unset_password_variable_exits_1_without_listening()
    {
        var run = await Tool.RunAsync(["serve", "--listen", "127.0.0.1:0", "--auth-user", "u", "--auth-password-env", "PEER_NOT_SET_X"], null, new Dictionary<string, string?> { ["PEER_NOT_SET_X"] = null });

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().NotContain("listening");
    }

    [Theory]
    [InlineData("--max-size", "0")]
    [InlineData("--max-size", "2048M")]
    [InlineData("--max-recipients", "0")]
    [InlineData("--max-connections", "10001")]
    [InlineData("--idle-timeout", "0")]
    [InlineData("--listen", "")]
    public async Task Serve_values_out_of_range_are_usage_errors_naming_the_option(string option, string value)
    {
        var run = await Tool.RunAsync(["serve", option, value], null, timeout: TimeSpan.FromSeconds(30));

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain(option);
        run.Output.Should().NotContain("listening");
    }

    [Fact]
    public async Task Serve_idle_timeout_closes_a_quiet_client_with_421()
    {
        using var files = new Files();
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--idle-timeout", "500ms");
        await using var client = await RawSmtpClient.ConnectAsync(serve.Port);

        (await client.ReadReplyAsync()).Should().StartWith("220");
        (await client.ReadReplyAsync()).Should().StartWith("421 4.4.2");
    }

    [Fact]
    public async Task Serve_tls_cert_out_writes_only_the_certificate_and_probe_sees_the_printed_fingerprint()
    {
        using var files = new Files();
        var pem = Path.Combine(files.Path, "serve.pem");
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--starttls", "--tls-cert-out", pem, "--json");
        var listening = JsonDocument.Parse(serve.Lines[0]).RootElement;

        var probe = await Tool.RunAsync("probe", "-s", serve.Address, "--starttls", "--ca-file", pem, "--json");

        var text = File.ReadAllText(pem);
        text.Should().Contain("BEGIN CERTIFICATE").And.NotContain("PRIVATE KEY");
        listening.GetProperty("starttls").GetBoolean().Should().BeTrue();
        listening.GetProperty("certificateFile").GetString().Should().Be(pem);
        probe.ExitCode.Should().Be(0, probe.ToString());
        var tls = probe.Json.Single().GetProperty("tls");
        tls.GetProperty("trusted").GetBoolean().Should().BeTrue();
        tls.GetProperty("certificate").GetProperty("sha256").GetString().Should().BeEquivalentTo(listening.GetProperty("certificateSha256").GetString()!.Replace(":", "", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Serve_with_a_given_certificate_and_separate_key_offers_STARTTLS_with_it()
    {
        using var files = new Files();
        var key = Path.Combine(Path.GetDirectoryName(Servers.Certificate)!, "key.pem");
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--tls-cert", Servers.Certificate, "--tls-key", key);

        var run = await Tool.RunAsync("send", "-s", serve.Address, "--starttls", "--ca-file", Servers.Certificate, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        (await serve.WaitForLineAsync(" saved to ")).Should().Contain("TLS");
    }

    [Fact]
    public async Task Serve_auth_without_TLS_needs_allow_cleartext_auth_and_then_prints_the_user()
    {
        using var files = new Files();
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--auth");
        var password = new Dictionary<string, string?> { ["PW"] = "anything" };

        var auto = await Tool.RunAsync(["send", "-s", serve.Address, "--user", "bob", "--password-env", "PW", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"], null, password);
        var plain = await Tool.RunAsync(["send", "-s", serve.Address, "--auth", "PLAIN", "--allow-cleartext-auth", "--user", "bob", "--password-env", "PW", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"], null, password);

        auto.ExitCode.Should().Be(3, "auto picks no clear-text mechanism without TLS: " + auto);
        plain.ExitCode.Should().Be(0, plain.ToString());
        (await serve.WaitForLineAsync(" saved to ")).Should().Contain("bob");
    }

    [Fact]
    public async Task Serve_saves_a_batch_of_files_each_byte_for_byte_in_order()
    {
        using var files = new Files();
        var inbox = Path.Combine(files.Path, "inbox");
        await using var serve = await ServeProcess.StartAsync(inbox);
        var dir = files.Sub("out");
        var contents = Enumerable.Range(0, 12).Select(i => $"From: a@example.test\r\nTo: b{i}@example.test\r\nSubject: {i}\r\n\r\n{new string('.', i)}line\r\n").ToArray();
        for (var i = 0; i < contents.Length; i++)
        {
            files.Write($"out/{i:D2}.eml", contents[i]);
        }

        var run = await Tool.RunAsync("send", "-s", serve.Address, dir);

        run.ExitCode.Should().Be(0, run.ToString());
        await serve.WaitForLineAsync(" saved to ", 12);
        Directory.GetFiles(inbox).Select(File.ReadAllText).Should().BeEquivalentTo(contents);
    }

    [Fact]
    public async Task Serve_never_overwrites_a_file_already_in_the_folder()
    {
        using var files = new Files();
        var inbox = files.Sub("inbox");
        var now = DateTime.UtcNow;
        var taken = new List<string>();
        for (var second = -5; second < 600; second++)
        {
            for (var n = 1; n <= 2; n++)
            {
                var name = $"{now.AddSeconds(second):yyyyMMdd'T'HHmmss'Z'}-{n}.eml";
                taken.Add(files.Write("inbox/" + name, "taken " + name));
            }
        }

        await using var serve = await ServeProcess.StartAsync(inbox);
        var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "new");

        run.ExitCode.Should().Be(0, run.ToString());
        taken.Should().OnlyContain(f => File.ReadAllText(f) == "taken " + Path.GetFileName(f));
        var saved = Directory.GetFiles(inbox).Except(taken).Should().ContainSingle().Subject;
        File.ReadAllText(saved).Should().Contain("new");
        (await serve.WaitForLineAsync(" saved to ")).Should().Contain(Path.GetFileName(saved));
    }

    [Fact]
    public async Task Serve_max_connections_gives_the_extra_client_a_421_greeting_and_send_exits_2()
    {
        using var files = new Files();
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--max-connections", "1");
        await using var holder = await RawSmtpClient.ConnectAsync(serve.Port);
        (await holder.ReadReplyAsync()).Should().StartWith("220", "the one allowed connection");

        var run = await Tool.RunAsync("send", "-s", serve.Address, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("not usable:").And.Contain("421");
        Directory.Exists(serve.SaveDirectory).Should().BeTrue();
        Directory.GetFiles(serve.SaveDirectory).Should().BeEmpty();
    }

    [Fact]
    public async Task Serve_json_message_says_tls_and_user_for_an_authenticated_STARTTLS_session()
    {
        using var files = new Files();
        var pem = Path.Combine(files.Path, "serve.pem");
        await using var serve = await ServeProcess.StartAsync(Path.Combine(files.Path, "inbox"), null, "--starttls", "--auth", "--tls-cert-out", pem, "--json");

        var run = await Tool.RunAsync(
            ["send", "-s", serve.Address, "--starttls", "--ca-file", pem, "--user", "carol", "--password-env", "PW", "-f", "a@example.test", "-t", "b@example.test", "--body", "x"],
            null,
            new Dictionary<string, string?> { ["PW"] = "any" });

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("authenticated as carol (PLAIN)", "auto takes PLAIN over TLS when the server offers no stronger mechanism");
        var message = JsonDocument.Parse(await serve.WaitForLineAsync("\"type\":\"message\"")).RootElement;
        message.GetProperty("tls").GetBoolean().Should().BeTrue();
        message.GetProperty("user").GetString().Should().Be("carol");
    }

    [Fact]
    public async Task Send_without_server_saves_to_the_outbox_in_the_working_directory_and_says_where()
    {
        using var files = new Files();

        var run = await Tool.RunAsync(["send", "--from", "a@example.test", "--to", "b@example.test", "--subject", "hi", "--body", "hello", "--json"], null, workingDirectory: files.Path);

        run.ExitCode.Should().Be(0, run.ToString());
        var savedTo = run.Json[0].GetProperty("savedTo").GetString()!;
        var outbox = Path.Combine(files.Path, "mailpipe-outbox");
        Directory.GetFiles(outbox).Should().ContainSingle();
        Path.GetFullPath(savedTo, files.Path).Should().Be(Directory.GetFiles(outbox).Single());
        File.ReadAllText(Directory.GetFiles(outbox).Single()).Should().Contain("Subject: hi").And.Contain("hello");
    }

    [Fact]
    public async Task Send_without_server_honours_save_dir_and_removes_Bcc_from_a_file()
    {
        using var files = new Files();
        var save = Path.Combine(files.Path, "saved");
        var file = files.Write("m.eml", "From: a@example.test\r\nTo: b@example.test\r\nBcc: hidden@example.test\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "--save-dir", save, file);

        run.ExitCode.Should().Be(0, run.ToString());
        File.ReadAllText(Directory.GetFiles(save).Single()).Should().Be("From: a@example.test\r\nTo: b@example.test\r\n\r\nx\r\n");
    }

    [Fact]
    public async Task Probe_of_Postfix_shows_STARTTLS_the_certificate_and_the_extensions_after_it()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Postfix), "--ca-file", Servers.Certificate);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("greeting: 220").And.Contain("STARTTLS: 220").And.Contain("EHLO after STARTTLS: 250");
        run.Output.Should().Contain("subject: CN=localhost").And.Contain("trusted: yes").And.MatchRegex("sha256: [0-9A-F]{64}");
    }

    [Fact]
    public async Task Probe_json_of_implicit_TLS_has_the_documented_fields()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.PostfixTls), "--tls", "--ca-file", Servers.Certificate, "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var report = run.Json.Single();
        report.GetProperty("type").GetString().Should().Be("probe");
        report.GetProperty("tlsMode").GetString().Should().NotBeNullOrEmpty();
        var tls = report.GetProperty("tls");
        tls.GetProperty("established").GetBoolean().Should().BeTrue();
        tls.GetProperty("trusted").GetBoolean().Should().BeTrue();
        tls.GetProperty("nameMatched").GetBoolean().Should().BeTrue();
        tls.GetProperty("certificate").GetProperty("names").EnumerateArray().Select(n => n.GetString()).Should().Contain("localhost");
        tls.GetProperty("certificate").GetProperty("sha256").GetString().Should().MatchRegex("^[0-9A-F]{64}$");
        report.GetProperty("exitCode").GetInt32().Should().Be(0);
        report.GetProperty("error").ValueKind.Should().Be(JsonValueKind.Null);
    }

    [Fact]
    public async Task Probe_with_a_tls_name_the_certificate_lacks_says_not_matched_and_exits_2_unless_accepted()
    {
        var strict = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Postfix), "--ca-file", Servers.Certificate, "--tls-name", "mail.example.test");
        var lenient = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Postfix), "--ca-file", Servers.Certificate, "--tls-name", "mail.example.test", "--accept-name-mismatch", "--json");

        strict.ExitCode.Should().Be(2, strict.ToString());
        strict.Output.Should().Contain("name mail.example.test: NOT matched").And.Contain("trusted: yes").And.Contain("error: ");
        lenient.ExitCode.Should().Be(0, lenient.ToString());
        var tls = lenient.Json.Single().GetProperty("tls");
        tls.GetProperty("nameMatched").GetBoolean().Should().BeFalse();
        lenient.Json.Single().GetProperty("ehloAfterStartTls").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).Should().Contain(e => e!.StartsWith("AUTH ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Probe_of_aiosmtpd_shows_AUTH_only_after_STARTTLS()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Aiosmtpd), "--ca-file", Servers.Certificate, "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var report = run.Json.Single();
        report.GetProperty("startTls").GetProperty("code").GetInt32().Should().Be(220);
        report.GetProperty("ehloAfterStartTls").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).Should().Contain("AUTH LOGIN PLAIN");
    }

    [Fact]
    public async Task Probe_without_the_ca_file_still_shows_the_certificate_and_exits_2()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.PostfixTls), "--tls");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("subject: CN=localhost").And.Contain("error: ");
        run.Error.Should().NotBeEmpty("the failure is said again on standard error");
    }

    [Fact]
    public async Task Probe_with_starttls_required_against_smtp_sink_exits_2()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Sink), "--starttls");

        run.ExitCode.Should().Be(2, run.ToString());
    }

    [Fact]
    public async Task Probe_of_smtp_sink_lists_its_extensions_and_no_TLS()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.Sink), "--json");

        run.ExitCode.Should().Be(0, run.ToString());
        var report = run.Json.Single();
        report.GetProperty("startTlsOffered").GetBoolean().Should().BeFalse();
        report.GetProperty("ehlo").GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).Should().Contain("PIPELINING");
    }

    [Fact]
    public async Task Probe_of_a_closed_port_exits_2()
    {
        var run = await Tool.RunAsync("probe", "-s", $"127.0.0.1:{Servers.Closed()}");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("error: ");
    }

    [Fact]
    public async Task Probe_without_server_is_a_usage_error()
    {
        var run = await Tool.RunAsync("probe");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("--server");
    }

    [Fact]
    public async Task Probe_of_the_implicit_TLS_port_without_tls_times_out_with_exit_8_and_hints_at_tls()
    {
        var run = await Tool.RunAsync("probe", "-s", Servers.At(Servers.PostfixTls), "--timeout", "2");

        run.ExitCode.Should().Be(8, run.ToString());
        (run.Output + run.Error).Should().Contain("--tls");
    }
}
