using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>Defects found by breaker11 (session 8): the CLI as a user or a script runs it, TLS and AUTH.</summary>
public sealed class Breaker11Tests
{
    private static string? WithAuthPlain(string command) => command.StartsWith("EHLO", StringComparison.Ordinal)
        ? "250-scripted.test\r\n250-PIPELINING\r\n250 AUTH PLAIN"
        : command.StartsWith("AUTH PLAIN", StringComparison.Ordinal) ? "235 2.7.0 Authentication successful" : ScriptedSmtpServer.AcceptAll(command);

    /// <summary>
    /// <c>mailpipe send --user u --password-env P --quit-after auth --json</c>, the "do my credentials work" check,
    /// authenticated (the last step 235) but its summary said <c>"authenticatedAs": null, "authMechanism": null</c> and
    /// the text summary left out "authenticated as": the summary of every run that stopped before the batch dropped them.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Quit_after_auth_names_who_authenticated_in_the_summary(bool json)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", WithAuthPlain);
        var variable = "MAILPIPE_B11_PASSWORD_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "secret");
        try
        {
            string[] arguments = ["send", "--server", server.Address, "--user", "someone", "--password-env", variable, "--auth", "PLAIN",
                "--allow-cleartext-auth", "-f", "a@example.test", "-t", "b@example.test", "--body", "x", "--quit-after", "auth"];
            var run = await CliRunner.RunAsync(json ? [.. arguments, "--json"] : arguments);

            run.ExitCode.Should().Be(0, run.Output + run.Error);
            server.Commands.Should().Contain(c => c.StartsWith("AUTH PLAIN", StringComparison.Ordinal))
                .And.NotContain(c => c.StartsWith("MAIL", StringComparison.Ordinal));
            if (json)
            {
                using var summary = JsonDocument.Parse(run.OutputLines[^1]);
                summary.RootElement.GetProperty("steps").EnumerateArray().Last().GetProperty("code").GetInt32().Should().Be(235);
                summary.RootElement.GetProperty("authenticatedAs").GetString().Should().Be("someone");
                summary.RootElement.GetProperty("authMechanism").GetString().Should().Be("PLAIN");
            }
            else
            {
                run.Output.Should().Contain("authenticated as someone (PLAIN)");
            }
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    /// <summary>
    /// <c>mailpipe send --tls</c> (or <c>probe --tls</c>) against a port that speaks plain SMTP first (25, 587) said only
    /// "The TLS handshake with '127.0.0.1' failed: Cannot determine the frame size or a corrupted frame was received.":
    /// the twin of the hint a silent port gets (A_silent_port_hints_at_implicit_TLS), it now names the way out.
    /// </summary>
    [Theory]
    [InlineData("probe")]
    [InlineData("send")]
    public async Task Implicit_TLS_against_a_plain_port_hints_at_starttls(string command)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test ESMTP", ScriptedSmtpServer.AcceptAll);

        string[] arguments = command == "probe"
            ? ["probe", "--server", server.Address, "--tls", "--timeout", "30s"]
            : ["send", "--server", server.Address, "--tls", "--timeout", "30s", "--from", "a@example.test", "--to", "b@example.test", "--body", "x"];
        var run = await CliRunner.RunAsync(arguments);

        run.ExitCode.Should().Be(2, run.Output + run.Error);
        run.Error.Should().Contain("TLS with").And.Contain("--starttls");

        // What came instead, quoted by the library; its advice in API terms (SmtpTlsMode) left to the option's hint.
        run.Error.Should().Contain("answered in plain text").And.Contain("220 scripted.test ESMTP").And.NotContain("SmtpTlsMode");
    }

    /// <summary>
    /// <c>mailpipe send big.eml next.eml</c> to a server without CHUNKING, big.eml larger than 1 MiB (streamed) with a NUL
    /// octet after its first MiB: MailPipe closes the connection rather than end big.eml (right), but next.eml, which
    /// has no NUL, was reported "not sent (exit 6)" with big.eml's error ("The message content has a NUL octet at offset
    /// ...") as if it had been refused for its own content; it is not sent because the connection was closed.
    /// </summary>
    [Fact]
    public async Task A_message_after_one_whose_streamed_content_failed_is_not_blamed_for_it()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var directory = new TempDirectory();
        var body = new System.Text.StringBuilder();
        while (body.Length < 1_200_000)
        {
            body.Append("a line of the body of the large message, nothing special in it\n");
        }

        var big = directory.File("1-big.eml", [.. "From: a@example.test\nTo: b@example.test\nSubject: big\n\n"u8, .. System.Text.Encoding.ASCII.GetBytes(body.ToString()), 0, .. "tail\n"u8]);
        var next = directory.File("2-next.eml", "From: a@example.test\nTo: c@example.test\nSubject: next\n\nnothing wrong here\n");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", big, next);

        var results = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.GetProperty("type").GetString() == "message").ToList();
        results.Should().HaveCount(2, run.Output + run.Error);
        results[0].GetProperty("outcome").GetString().Should().Be("notSent");
        results[0].GetProperty("error").GetString().Should().Contain("NUL");
        results[1].GetProperty("outcome").GetString().Should().Be("notSent");
        results[1].GetProperty("error").GetString().Should().NotContain("NUL octet at offset", "next.eml has no NUL: it was not sent because the connection was closed");
        results[1].GetProperty("exitCode").GetInt32().Should().Be(2, "not sent for the connection's sake (exit 2), not refused (exit 6)");
    }

    /// <summary>
    /// A re-sent message (it has <c>Resent-To</c>) takes its envelope from the <c>Resent-*</c> fields only, as
    /// <c>sendmail -t</c> does; one without <c>Resent-From</c> was reported "no sender: the message has no From or Sender
    /// field with an address" although its From field has one: the error names the fields that were looked at.
    /// </summary>
    [Fact]
    public async Task A_resent_message_without_a_resent_sender_says_which_fields_were_read()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var directory = new TempDirectory();
        var resent = directory.File("resent.eml", "From: a@example.test\nTo: b@example.test\nResent-To: c@example.test\nSubject: again\n\nbody\n");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, resent);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Output.Should().Contain("Resent-From").And.NotContain("no From or Sender field");
    }

    /// <summary>
    /// A small file with 8-bit octets (a UTF-8 body) to a server without 8BITMIME is not sent (exit 6), rightly, but
    /// the reason read "The message needs 8BITMIME (RFC 6152): the content has 8-bit octets but BODY is 7BIT, which the
    /// server does not offer": the user never chose BODY, and "7BIT, which the server does not offer" is wrong.
    /// </summary>
    [Fact]
    public async Task An_8bit_file_to_a_server_without_8BITMIME_says_the_server_lacks_8BITMIME()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", c => c.StartsWith("EHLO", StringComparison.Ordinal) ? "250-scripted.test\r\n250 PIPELINING" : ScriptedSmtpServer.AcceptAll(c));
        using var directory = new TempDirectory();
        var file = directory.File("utf8.eml", "From: a@example.test\nTo: b@example.test\nSubject: x\n\nGr\u00fc\u00dfe\n");

        var run = await CliRunner.RunAsync("send", "--server", server.Address, file);

        run.ExitCode.Should().Be(6, run.Output + run.Error);
        run.Output.Should().Contain("8BITMIME").And.Contain("8-bit octets").And.NotContain("BODY is 7BIT");
        server.Commands.Should().NotContain(c => c.StartsWith("MAIL", StringComparison.Ordinal));
    }

    /// <summary>
    /// A bare CR ends a line for MailPipe, which sends it as CRLF (a file with old Mac line ends, or one CR that slipped
    /// into a header section), but the CLI's header reader split lines at LF only: in "Subject: hi\rBcc: x\r\n" it saw
    /// one Subject field, so the Bcc field was neither read (x got nothing) nor removed, and the server received
    /// "Bcc: x" as a field of its own: the blind copy was disclosed to every recipient. Small files (read whole) and
    /// large ones (streamed after their header section) alike.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_Bcc_field_after_a_bare_CR_is_read_and_removed(bool large)
    {
        byte[]? received = null;
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll, data =>
        {
            received = data;
            return "250 2.0.0 queued";
        });
        using var directory = new TempDirectory();
        var body = large ? string.Concat(Enumerable.Repeat("a line of a large body, streamed from the file\r\n", 30_000)) : "body\r\n";
        var file = directory.File("bcc.eml", "From: a@example.test\r\nTo: to@example.test\r\nSubject: hi\rBcc: secret@example.test\r\n\r\n" + body);

        var run = await CliRunner.RunAsync("send", "--server", server.Address, file);

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        server.Commands.Should().Contain("RCPT TO:<secret@example.test>");
        var text = System.Text.Encoding.ASCII.GetString(received!);
        text.Should().StartWith("From: a@example.test\r\nTo: to@example.test\r\nSubject: hi\r\n\r\n").And.NotContain("secret@example.test");
    }

    /// <summary>
    /// <c>mailpipe send --user u --password-env P</c> (AUTH auto) without TLS to a server offering only PLAIN and LOGIN
    /// stops before AUTH (right, exit 3), but the reason pointed at the library's API: "(start TLS first, or set
    /// SmtpSessionOptions.AllowCleartextAuthentication)"; it now names the CLI's options, as the certificate errors do.
    /// </summary>
    [Fact]
    public async Task No_usable_mechanism_without_TLS_names_the_CLI_options()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", c => c.StartsWith("EHLO", StringComparison.Ordinal) ? "250-scripted.test\r\n250 AUTH PLAIN LOGIN" : ScriptedSmtpServer.AcceptAll(c));
        var variable = "MAILPIPE_B11_PASSWORD_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "secret");
        try
        {
            var run = await CliRunner.RunAsync("send", "--server", server.Address, "--user", "someone", "--password-env", variable, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

            run.ExitCode.Should().Be(3, run.Output + run.Error);
            run.Error.Should().Contain("--allow-cleartext-auth").And.Contain("--starttls").And.NotContain("SmtpSessionOptions");
            server.Commands.Should().NotContain(c => c.StartsWith("AUTH", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }

    /// <summary>
    /// A file that is a pipe (a FIFO, bash's process substitution <c>mailpipe send &lt;(make-message)</c>, /dev/stdin)
    /// ended the process with "Unhandled exception: System.NotSupportedException: Stream does not support seeking" and a
    /// stack trace: no message listed, no summary, the other files not sent. It is read to its end, as <c>-</c> is.
    /// </summary>
    [Fact]
    public async Task A_file_that_is_a_pipe_is_read_to_its_end_and_sent()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var directory = new TempDirectory();
        var fifo = Path.Combine(directory.Path, "message.fifo");
        var made = System.Diagnostics.Process.Start("mkfifo", [fifo]);
        await made.WaitForExitAsync();
        made.ExitCode.Should().Be(0);
        var other = directory.File("other.eml", "From: a@example.test\nTo: c@example.test\nSubject: other\n\nbody\n");
        var writer = Task.Run(async () =>
        {
            await using var pipe = new FileStream(fifo, FileMode.Open, FileAccess.Write); // waits for the reader
            await pipe.WriteAsync("From: a@example.test\nTo: b@example.test\nSubject: piped\n\nbody\n"u8.ToArray());
        });

        var run = await CliRunner.RunAsync("send", "--server", server.Address, fifo, other);
        if (!writer.IsCompleted)
        {
            await using var release = new FileStream(fifo, FileMode.Open, FileAccess.Read); // the CLI never opened it: let the writer end
            await release.CopyToAsync(Stream.Null);
        }

        await writer;

        run.ExitCode.Should().Be(0, run.Output + run.Error);
        run.Output.Should().Contain($"{fifo}: accepted").And.Contain($"{other}: accepted");
        server.Commands.Should().Contain("RCPT TO:<b@example.test>").And.Contain("RCPT TO:<c@example.test>");
    }

    /// <summary>
    /// <c>mailpipe send --header "Bcc: boss@example.test" message.eml</c> (or with a built message) wrote the Bcc field
    /// into the message every recipient gets, and boss@example.test was no recipient at all: the blind copy was shown to
    /// everyone and reached nobody, where a file's own Bcc field is read as recipients and removed. It is a usage error
    /// now (exit 1, no connection) that points at --to.
    /// </summary>
    [Theory]
    [InlineData("Bcc: boss@example.test", true)]
    [InlineData("resent-bcc: boss@example.test", true)]
    [InlineData("Bcc: boss@example.test", false)]
    public async Task A_Bcc_field_given_with_header_is_a_usage_error(string field, bool file)
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", ScriptedSmtpServer.AcceptAll);
        using var directory = new TempDirectory();
        var message = directory.File("m.eml", "From: a@example.test\nTo: b@example.test\nSubject: s\n\nbody\n");
        string[] arguments = file
            ? ["send", "--server", server.Address, "--header", field, message]
            : ["send", "--server", server.Address, "--header", field, "-f", "a@example.test", "-t", "b@example.test", "--body", "x"];

        var run = await CliRunner.RunAsync(arguments);

        run.ExitCode.Should().Be(1, run.Output + run.Error);
        run.Error.Should().Contain("--header").And.Contain("--to");
        server.Connected.Should().BeFalse("a usage error makes no connection");
    }

    /// <summary>
    /// README: Ctrl+C or SIGTERM stops <c>mailpipe serve</c> and "the sessions in progress get a few seconds to end".
    /// They got none: a client in the middle of its message was answered "554" at once and the message was lost
    /// (SmtpServer's Shutdown cancels every session). Now the server stops accepting, lets the sessions in progress end
    /// (5 s at most) and only then stops them.
    /// </summary>
    [Fact]
    public async Task Serve_lets_a_message_in_progress_end_after_Ctrl_C()
    {
        using var directory = new TempDirectory();
        var inbox = Path.Combine(directory.Path, "inbox");
        await using var serve = await ServeHost.StartAsync(inbox);
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, serve.Port);
        var stream = client.GetStream();
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        async Task<string> ReplyAsync()
        {
            string line;
            do
            {
                line = await reader.ReadLineAsync() ?? "(closed)";
            }
            while (line.Length > 3 && line[3] == '-');
            return line;
        }

        async Task<string> CommandAsync(string command)
        {
            await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(command + "\r\n"));
            return await ReplyAsync();
        }

        (await ReplyAsync()).Should().StartWith("220");
        (await CommandAsync("EHLO client.test")).Should().StartWith("250");
        (await CommandAsync("MAIL FROM:<a@example.test>")).Should().StartWith("250");
        (await CommandAsync("RCPT TO:<b@example.test>")).Should().StartWith("250");
        (await CommandAsync("DATA")).Should().StartWith("354");
        await stream.WriteAsync("Subject: in progress\r\n\r\nthe first half"u8.ToArray());

        var stopped = serve.StopAsync(); // Ctrl+C
        while (true)
        {
            // Stopping: no new connection is taken any more.
            using var probe = new System.Net.Sockets.TcpClient();
            try
            {
                await probe.ConnectAsync(System.Net.IPAddress.Loopback, serve.Port);
                var greeting = new byte[64];
                if (await probe.GetStream().ReadAsync(greeting) == 0)
                {
                    break;
                }
            }
            catch (System.Net.Sockets.SocketException)
            {
                break;
            }
            catch (IOException)
            {
                // A connection left in the closed listener's backlog is reset: not accepted either.
                break;
            }

            await Task.Delay(20);
        }

        await stream.WriteAsync(" and the second\r\n.\r\n"u8.ToArray());
        var final = await ReplyAsync();

        final.Should().StartWith("250", "the session was in progress when Ctrl+C came");
        (await stopped).Should().Be(0);
        Directory.GetFiles(inbox).Should().ContainSingle();
    }

    /// <summary>
    /// <c>mailpipe send --user u --password-env P</c> without TLS to a server that offers AUTH only after STARTTLS (as
    /// <c>mailpipe serve --starttls --auth</c> and submission ports do) said "The server does not advertise AUTH (send
    /// EHLO first; some servers offer AUTH only after STARTTLS)": the CLI had sent EHLO; the way out is --starttls.
    /// </summary>
    [Fact]
    public async Task No_AUTH_advertised_without_TLS_points_at_starttls()
    {
        await using var server = new ScriptedSmtpServer("220 scripted.test", c => c.StartsWith("EHLO", StringComparison.Ordinal) ? "250-scripted.test\r\n250 STARTTLS" : ScriptedSmtpServer.AcceptAll(c));
        var variable = "MAILPIPE_B11_PASSWORD_" + Guid.NewGuid().ToString("N");
        Environment.SetEnvironmentVariable(variable, "secret");
        try
        {
            var run = await CliRunner.RunAsync("send", "--server", server.Address, "--user", "someone", "--password-env", variable, "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

            run.ExitCode.Should().Be(3, run.Output + run.Error);
            run.Error.Should().Contain("--starttls").And.NotContain("send EHLO first");
        }
        finally
        {
            Environment.SetEnvironmentVariable(variable, null);
        }
    }
}
