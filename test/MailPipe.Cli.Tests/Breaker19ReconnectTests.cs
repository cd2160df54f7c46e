using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Breaker tests of <c>mailpipe send</c> going on over a new connection when a server ends a session at a limit: a
/// 421 in the middle of the data, BDAT chunks, a new connection that cannot be used, a file changed between
/// connections, an interruption while the second connection works, TLS on one connection and not the next. Each compares
/// what the scripted server read (each end of data, by connection) with what the tool reported.
/// </summary>
public sealed class Breaker19ReconnectTests
{
    private static (List<JsonElement> Messages, JsonElement Summary) Parse(CliRunner.Run run)
    {
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().NotBeEmpty(run.Error);
        lines[^1].GetProperty("type").GetString().Should().Be("summary", run.Output);
        var messages = lines.SkipLast(1).ToList();
        return (messages, lines[^1]);
    }

    private static string Message(int i, int bodyBytes = 0) =>
        $"From: a@example.test\r\nTo: b@example.test\r\nSubject: m{i}\r\n\r\nbody {i}\r\n{(bodyBytes > 0 ? string.Concat(Enumerable.Repeat(new string('x', 998) + "\r\n", bodyBytes / 1000)) : string.Empty)}";

    private static string[] Files(TempDirectory dir, int count, Func<int, int>? bodyBytes = null) =>
        [.. Enumerable.Range(1, count).Select(i => dir.File($"m{i:D3}.eml", Message(i, bodyBytes?.Invoke(i) ?? 0)))];

    private static string[] Outcomes(List<JsonElement> messages) => [.. messages.Select(m => m.GetProperty("outcome").GetString()!)];

    private static void InOrderOnce(List<JsonElement> messages, int count, string because) =>
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal(Enumerable.Range(1, count), because);

    /// <summary>Server closes with 421 two messages into each session (at MAIL).</summary>
    private static string? LimitAtMail(int connection, int ends, string line, int perSession = 2) =>
        line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) && ends >= perSession ? "421 4.7.0 brk19.test too many messages in this connection"
        : line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? "250 2.1.5 Ok" : "250 2.1.0 Ok";

    /// <summary>
    /// The server closes the connection (with a 421, or without a word) after reading a part of message 2's content. Without
    /// a word, nothing of it was taken: it goes on a new connection, once. A 421 read as the reply to its end of data
    /// (the server did not take the message, RFC 5321 §3.8) sends it again on the new connection too, once (session 20:
    /// it used to be reported refused).
    /// </summary>
    [Theory]
    [InlineData("")]
    [InlineData("421 4.4.2 brk19.test timeout exceeded")]
    public async Task A_session_ended_while_a_messages_content_is_written_never_delivers_it_twice(string reply)
    {
        await using var server = new Breaker19Server
        {
            MidData = (connection, ends) => connection == 1 && ends == 1 ? reply : null,
        };
        using var dir = new TempDirectory();

        // Without a word, message 2 must be larger than what the sockets buffer (else it is all written, the end of data
        // too, and its outcome is unknown): 16 MB, streamed from its file.
        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 4, i => i == 2 ? (reply.Length == 0 ? 16_000_000 : 600_000) : 0)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Truthful(messages, server, run);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
        if (reply.Length == 0)
        {
            Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted", "accepted"], run.Output + run.Error);
            run.ExitCode.Should().Be(ExitCodes.Success);
            server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2", "m3", "m4"], "each message's end of data is read once");
        }
        else
        {
            // The 421 is read as the reply to its end of data, or the write meets the closed connection first (not
            // sent): either way it goes on the new connection, and its data arrives once.
            Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted", "accepted"], run.Output + run.Error);
            run.ExitCode.Should().Be(ExitCodes.Success);
            server.EndsOfData.Should().Equal([(1, "m1"), (2, "m2"), (2, "m3"), (2, "m4")]);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_session_closed_between_BDAT_chunks_sends_the_message_again_once(bool pipelining)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => pipelining ? ["PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES", "8BITMIME"] : ["CHUNKING", "ENHANCEDSTATUSCODES", "8BITMIME"],
            CloseAfterChunk = (connection, ends, chunks) => connection == 1 && ends == 1 && chunks == 2,
        };
        using var dir = new TempDirectory();

        // Message 2 is larger than the 1 MiB held in memory: streamed from the file in 256 KiB chunks.
        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 3, i => i == 2 ? 1_500_000 : 0)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 3, run.Output);
        Truthful(messages, server, run);
        if (!pipelining)
        {
            // In lockstep the rest of the chunks was never written: not taken, so sent again (with PIPELINING the
            // client may have written the whole message and the next into the socket before the close: unknown).
            Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted"], run.Output + run.Error);
            summary.GetProperty("connections").GetInt32().Should().Be(2);
            server.EndsOfData.Where(e => e.Subject == "m2").Select(e => e.Connection).Should().Equal([2]);
        }
    }

    /// <summary>Each end of data read at most once; an accepted message read, one reported not sent never read.</summary>
    private static void Truthful(List<JsonElement> messages, Breaker19Server server, CliRunner.Run run)
    {
        var received = server.EndsOfData.Select(e => e.Subject).ToList();
        received.Should().OnlyHaveUniqueItems("nothing is sent twice");
        var outcomes = Outcomes(messages);
        for (var i = 0; i < outcomes.Length; i++)
        {
            if (outcomes[i] == "accepted")
            {
                received.Should().Contain($"m{i + 1}", run.Output);
            }

            if (outcomes[i] == "notSent")
            {
                received.Should().NotContain($"m{i + 1}", $"m{i + 1} is reported not sent: {run.Output}");
            }
        }
    }

    [Fact]
    public async Task A_message_whose_BDAT_LAST_went_out_before_the_session_closed_is_unknown_and_not_sent_again()
    {
        // The first end of data is answered, then the connection closes: what the client pipelined after it (BDAT LAST
        // included) may have reached the server, so it is unknown and must not go on a new connection.
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => ["PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES", "8BITMIME"],
            OnEndOfData = (connection, ends, _) => connection == 1 && ends == 1 ? null : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 5)]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        var outcomes = Outcomes(messages);
        outcomes[0].Should().Be("accepted");
        outcomes[1].Should().Be("unknown", "its end of data was read and never answered");
        var received = server.EndsOfData.Select(e => e.Subject).ToList();
        received.Should().OnlyHaveUniqueItems("nothing is sent twice");
        for (var i = 0; i < 5; i++)
        {
            if (outcomes[i] == "accepted")
            {
                received.Should().Contain($"m{i + 1}");
            }

            if (outcomes[i] == "notSent")
            {
                received.Should().NotContain($"m{i + 1}", $"m{i + 1} is reported not sent");
            }
        }
    }

    [Theory]
    [InlineData("554 5.7.1 brk19.test no service for you", 2, 3)]
    [InlineData("421 4.3.2 brk19.test too busy", 1, 2)]
    [InlineData(null, 2, 3)]
    public async Task A_new_connection_that_cannot_be_used_reports_the_rest_not_sent_once(string? greeting, int reconnects, int connections)
    {
        await using var server = new Breaker19Server
        {
            Greeting = connection => connection == 1 ? "220 brk19.test ESMTP" : greeting,
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", $"{reconnects}", .. Files(dir, 5)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent", "notSent"], run.Output + run.Error);
        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed);
        summary.GetProperty("connections").GetInt32().Should().Be(connections);
        server.Connections.Should().Be(connections);
        messages[2].GetProperty("error").GetString().Should().Contain($"connection {connections}");
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2"]);
    }

    [Fact]
    public async Task A_large_file_changed_between_connections_is_not_sent_on_the_new_one()
    {
        using var dir = new TempDirectory();
        var files = Files(dir, 3, i => i == 3 ? 1_200_000 : 0);
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
            OnConnect = connection =>
            {
                if (connection == 2)
                {
                    File.AppendAllText(files[2], "appended between the connections\r\n");
                }
            },
        };

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. files]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 3, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent"], run.Output + run.Error);
        messages[2].GetProperty("error").GetString().Should().Contain("changed");
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2"]);
    }

    [Fact]
    public async Task An_interruption_while_the_second_connection_opens_opens_no_third_and_reports_the_rest_not_sent()
    {
        using var interrupt = new CancellationTokenSource();
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
            Greeting = connection =>
            {
                if (connection == 2)
                {
                    interrupt.Cancel();
                }

                return "220 brk19.test ESMTP";
            },
        };
        using var dir = new TempDirectory();
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };

        var code = await Program.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 5)], output, error, interrupt.Token);

        var run = new CliRunner.Run(code, output.ToString(), error.ToString());
        var (messages, _) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent", "notSent"], run.Output + run.Error);
        server.Connections.Should().Be(2);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2"]);
        run.Error.Should().Contain("interrupted");
    }

    [Fact]
    public async Task An_interruption_while_the_second_connection_sends_reports_each_message_truthfully_once()
    {
        using var interrupt = new CancellationTokenSource();
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
            OnEndOfData = (connection, ends, _) =>
            {
                if (connection == 2 && ends == 0)
                {
                    interrupt.Cancel();
                }

                return $"250 2.0.0 Ok {connection}.{ends}";
            },
        };
        using var dir = new TempDirectory();
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };

        var code = await Program.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 6)], output, error, interrupt.Token);

        var run = new CliRunner.Run(code, output.ToString(), error.ToString());
        var (messages, _) = Parse(run);
        InOrderOnce(messages, 6, run.Output);
        var outcomes = Outcomes(messages);
        outcomes[..2].Should().Equal(["accepted", "accepted"]);
        outcomes[2].Should().BeOneOf(["accepted", "unknown"], run.Output);
        var received = server.EndsOfData.Select(e => e.Subject).ToList();
        received.Should().OnlyHaveUniqueItems();
        for (var i = 3; i < 6; i++)
        {
            if (outcomes[i] == "notSent")
            {
                received.Should().NotContain($"m{i + 1}", run.Output);
            }
        }

        server.Connections.Should().Be(2);
    }

    [Fact]
    public async Task Max_per_connection_1_without_pipelining_sends_each_of_many_files_once_on_its_own_connection()
    {
        await using var server = new Breaker19Server { Keywords = (_, _) => ["ENHANCEDSTATUSCODES", "8BITMIME"] };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--max-per-connection", "1", "--reconnect", "0", .. Files(dir, 12)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 12, run.Output);
        Outcomes(messages).Should().OnlyContain(o => o == "accepted", run.Output + run.Error);
        summary.GetProperty("connections").GetInt32().Should().Be(12);
        server.EndsOfData.Should().Equal(Enumerable.Range(1, 12).Select(i => (i, $"m{i}")));
    }

    [Fact]
    public async Task A_message_refused_for_its_own_sake_before_a_421_is_not_sent_again()
    {
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
            OnEndOfData = (connection, ends, subject) => subject == "m2" ? "554 5.7.1 brk19.test spam" : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 5)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "refused", "accepted", "accepted", "accepted"], run.Output + run.Error);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2", "m3", "m4", "m5"]);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
    }

    /// <summary>
    /// With --tls-optional the first connection used STARTTLS and the second was not offered it: the messages went on it
    /// in clear text (a man in the middle stripping STARTTLS from the new connection), and the summary still reported the
    /// first connection's TLS. Now a new connection after one with TLS requires it: the rest is reported not sent.
    /// </summary>
    [Fact]
    public async Task With_tls_optional_a_new_connection_after_one_with_TLS_requires_it()
    {
        using var certificate = new TestCertificate("brk19.test", withLoopbackAddress: true);
        await using var server = new Breaker19Server
        {
            Certificate = certificate.Certificate,
            Keywords = (connection, tls) => connection == 1 && !tls ? ["PIPELINING", "STARTTLS", "8BITMIME"] : ["PIPELINING", "8BITMIME"],
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--tls-optional", "--ca-file", certificate.PemFile, .. Files(dir, 4)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        server.MailTls.Should().Equal([(1, true)], "no message goes in clear text after the first connection used TLS");
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent"], run.Output + run.Error);
        messages[2].GetProperty("error").GetString().Should().Contain("--tls-optional").And.Contain("STARTTLS");
        summary.GetProperty("tls").GetProperty("protocol").GetString().Should().NotBeNullOrEmpty();
        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed);
    }

    /// <summary>The first connection had no TLS, the second had: the summary reported the second's TLS for the whole batch.</summary>
    [Fact]
    public async Task With_tls_optional_the_summary_reports_no_TLS_when_the_first_connection_had_none()
    {
        using var certificate = new TestCertificate("brk19.test", withLoopbackAddress: true);
        await using var server = new Breaker19Server
        {
            Certificate = certificate.Certificate,
            Keywords = (connection, tls) => connection > 1 && !tls ? ["PIPELINING", "STARTTLS", "8BITMIME"] : ["PIPELINING", "8BITMIME"],
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--tls-optional", "--ca-file", certificate.PemFile, .. Files(dir, 4)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Outcomes(messages).Should().OnlyContain(o => o == "accepted", run.Output + run.Error);
        server.MailTls.Should().Equal([(1, false), (2, true)]);
        summary.GetProperty("tls").ValueKind.Should().Be(JsonValueKind.Null, "messages went without TLS on the first connection");
    }

    /// <summary>
    /// A server that wants AUTH (PLAIN, LOGIN, XOAUTH2) on each connection before MAIL (530 otherwise), refuses AUTH on
    /// the connections <paramref name="refuseAuth"/> names, and ends each session with a 421 after two messages.
    /// </summary>
    private static Breaker19Server AuthServer(ConcurrentQueue<(int Connection, string Mechanism, bool Good)> attempts, Func<int, bool> refuseAuth)
    {
        var stage = new ConcurrentDictionary<int, string>();
        var authenticated = new ConcurrentDictionary<int, bool>();
        string Decode(string b64) => Encoding.UTF8.GetString(Convert.FromBase64String(b64.Trim()));
        string Finish(int connection, string mechanism, bool good)
        {
            stage.TryRemove(connection, out _);
            good &= !refuseAuth(connection);
            attempts.Enqueue((connection, mechanism, good));
            authenticated[connection] = good;
            return good ? "235 2.7.0 Authentication successful" : "535 5.7.8 Authentication credentials invalid";
        }

        return new Breaker19Server
        {
            Keywords = (_, _) => ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "AUTH PLAIN LOGIN XOAUTH2"],
            OnCommand = (connection, ends, line) =>
            {
                if (stage.TryGetValue(connection, out var step))
                {
                    if (step == "login-user")
                    {
                        stage[connection] = Decode(line) == "alice" ? "login-pass" : "login-bad";
                        return "334 UGFzc3dvcmQ6";
                    }

                    return Finish(connection, "LOGIN", step == "login-pass" && Decode(line) == "s3cret-brk19");
                }

                var words = line.Split(' ');
                if (words[0].Equals("AUTH", StringComparison.OrdinalIgnoreCase))
                {
                    switch (words[1].ToUpperInvariant())
                    {
                        case "PLAIN":
                            return Finish(connection, "PLAIN", words.Length > 2 && Decode(words[2]) == "\0alice\0s3cret-brk19");
                        case "LOGIN" when words.Length > 2:
                            stage[connection] = Decode(words[2]) == "alice" ? "login-pass" : "login-bad";
                            return "334 UGFzc3dvcmQ6";
                        case "LOGIN":
                            stage[connection] = "login-user";
                            return "334 VXNlcm5hbWU6";
                        case "XOAUTH2":
                            return Finish(connection, "XOAUTH2", words.Length > 2 && Decode(words[2]) == "user=alice\u0001auth=Bearer s3cret-brk19\u0001\u0001");
                        default:
                            return "504 5.5.4 Unrecognized authentication type";
                    }
                }

                if (line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) && !authenticated.GetValueOrDefault(connection))
                {
                    return "530 5.7.0 Authentication required";
                }

                return LimitAtMail(connection, ends, line);
            },
        };
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("XOAUTH2")]
    public async Task Each_new_connection_authenticates_again(string mechanism)
    {
        var attempts = new ConcurrentQueue<(int Connection, string Mechanism, bool Good)>();
        await using var server = AuthServer(attempts, _ => false);
        using var dir = new TempDirectory();
        Environment.SetEnvironmentVariable("BRK19_SECRET", "s3cret-brk19");

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--auth", mechanism, "--user", "alice", "--password-env", "BRK19_SECRET", "--allow-cleartext-auth", .. Files(dir, 5)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().OnlyContain(o => o == "accepted", run.Output + run.Error);
        attempts.Should().Equal([(1, mechanism, true), (2, mechanism, true), (3, mechanism, true)]);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        summary.GetProperty("authMechanism").GetString().Should().Be(mechanism);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2", "m3", "m4", "m5"]);
    }

    /// <summary>
    /// Connection 2 refused AUTH (535): with --reconnect 2 a third connection tried the same credentials again, two
    /// failed logins for one run (an account lock-out, fail2ban, counts each).
    /// </summary>
    [Fact]
    public async Task Authentication_refused_on_a_new_connection_reports_the_rest_not_sent_with_the_refusal()
    {
        var attempts = new ConcurrentQueue<(int Connection, string Mechanism, bool Good)>();
        await using var server = AuthServer(attempts, connection => connection > 1);
        using var dir = new TempDirectory();
        Environment.SetEnvironmentVariable("BRK19_SECRET", "s3cret-brk19");

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--auth", "PLAIN", "--user", "alice", "--password-env", "BRK19_SECRET", "--allow-cleartext-auth", .. Files(dir, 5)]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent", "notSent"], run.Output + run.Error);
        messages[2].GetProperty("error").GetString().Should().Contain("535");
        run.ExitCode.Should().Be(ExitCodes.AuthenticationFailed, run.Output);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2"]);
        attempts.Count(a => !a.Good).Should().Be(1, "a refused authentication is not tried again on yet another connection (an account lock-out counts failures)");
        server.Connections.Should().Be(2);
        run.Error.Should().Contain("no new connection tries the credentials again");
    }

    /// <summary>Standard input longer than 1 MiB is spooled to a temporary file and streamed: on the new connection it goes again from its start, whole.</summary>
    [Fact]
    public async Task Standard_input_spooled_to_a_file_goes_whole_on_the_new_connection()
    {
        await using var server = new Breaker19Server { OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line, perSession: 1) };
        using var dir = new TempDirectory();
        var piped = Encoding.ASCII.GetBytes(Message(2, 2_000_000));
        var environment = new CliEnvironment(() => new MemoryStream(piped, writable: false), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };

        var code = await Program.RunAsync(["send", "--server", server.Address, "--json", dir.File("m1.eml", Message(1)), "-", dir.File("m3.eml", Message(3))], output, error, environment, CancellationToken.None);

        var run = new CliRunner.Run(code, output.ToString(), error.ToString());
        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 3, run.Output);
        Outcomes(messages).Should().OnlyContain(o => o == "accepted", run.Output + run.Error);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        server.EndsOfData.Should().Equal([(1, "m1"), (2, "m2"), (3, "m3")]);
        server.Octets.Single(o => o.Subject == "m2").Octets.Should().Be(piped.Length);
    }

    /// <summary>Ctrl+C while the second connection writes a large message's content: it is never completed, reported not sent, and no third connection opens.</summary>
    [Fact]
    public async Task An_interruption_while_the_second_connection_writes_a_large_message_never_completes_it()
    {
        using var interrupt = new CancellationTokenSource();
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
            MidData = (connection, _) =>
            {
                if (connection == 2)
                {
                    interrupt.Cancel();
                }

                return null;
            },
        };
        using var dir = new TempDirectory();
        var output = new StringWriter { NewLine = "\n" };
        var error = new StringWriter { NewLine = "\n" };

        var code = await Program.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 4, i => i == 3 ? 16_000_000 : 0)], output, error, interrupt.Token);

        var run = new CliRunner.Run(code, output.ToString(), error.ToString());
        var (messages, _) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent"], run.Output + run.Error);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m2"]);
        server.Connections.Should().Be(2);
    }

    /// <summary>
    /// Without PIPELINING the next message is handed over only once every result so far was seen: a message the session
    /// does not send for its own sake (larger than SIZE, 8-bit content for a server without 8BITMIME) must not stall it,
    /// and the limit still moves the rest to a new connection.
    /// </summary>
    [Fact]
    public async Task Without_pipelining_messages_not_sent_for_their_own_sake_do_not_stall_the_batch()
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => ["ENHANCEDSTATUSCODES", "SIZE 4000"],
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();
        string[] files =
        [
            dir.File("m1.eml", Message(1)),
            dir.File("m2.eml", Message(2, 5000)),
            dir.File("m3.eml", Message(3)),
            dir.File("m4.eml", Message(4).Replace("body 4", "b\u00e9dy 4", StringComparison.Ordinal)),
            dir.File("m5.eml", Message(5)),
            dir.File("m6.eml", Message(6)),
        ];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. files]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 6, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "notSent", "accepted", "notSent", "accepted", "accepted"], run.Output + run.Error);
        server.EndsOfData.Select(e => e.Subject).Should().Equal(["m1", "m3", "m5", "m6"]);
    }

    /// <summary>A 421 right behind the EHLO reply (a server shutting down as the session starts), on the first or the second connection.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_421_right_behind_the_EHLO_reply_is_reported_without_a_crash(int on)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (connection, _) => connection == on ? ["PIPELINING", "8BITMIME\r\n421 4.3.2 brk19.test shutting down"] : ["PIPELINING", "8BITMIME"],
            OnCommand = (connection, ends, line) => connection == on ? null : LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 4)]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Truthful(messages, server, run);
        // On the second connection it counts against --reconnect: the third takes the rest.
        Outcomes(messages).Should().Equal(on == 1 ? ["notSent", "notSent", "notSent", "notSent"] : ["accepted", "accepted", "accepted", "accepted"], run.Output + run.Error);
        run.ExitCode.Should().Be(on == 1 ? ExitCodes.ConnectionFailed : ExitCodes.Success, run.Output + run.Error);
        server.EndsOfData.Select(e => e.Connection).Should().Equal(on == 1 ? [] : [1, 1, 3, 3]);
    }

    /// <summary>--trace with --json: standard output has each message's line once, in order, and the summary; the transcript on standard error shows each connection, the notice between them.</summary>
    [Fact]
    public async Task Trace_and_json_across_connections_keep_the_results_clean_and_the_transcript_says_which_connection()
    {
        await using var server = new Breaker19Server { OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line) };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--trace", .. Files(dir, 5)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 5, run.Output);
        Outcomes(messages).Should().OnlyContain(o => o == "accepted");
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        var error = run.Error.Split('\n');
        var connecting = error.Select((line, i) => (line, i)).Where(l => l.line.StartsWith("* Connecting to", StringComparison.Ordinal)).Select(l => l.i).ToList();
        connecting.Should().HaveCount(3, run.Error);
        var second = Array.FindIndex(error, l => l.Contains("sending them on connection 2", StringComparison.Ordinal));
        var third = Array.FindIndex(error, l => l.Contains("sending it on connection 3", StringComparison.Ordinal));
        second.Should().BeInRange(connecting[0], connecting[1], "the notice comes between the first connection's transcript and the second's");
        third.Should().BeInRange(connecting[1], connecting[2]);
        error.Count(l => l.StartsWith("C: MAIL FROM", StringComparison.Ordinal)).Should().Be(7, "2 + 2 + 1 accepted, and the two refused with 421");
    }

    /// <summary>
    /// --reconnect 0 is one connection as before: past a 452 4.5.3 limit (OpenSMTPD, no PIPELINING) every later message
    /// was refused with that reply (exit 4). The session stopped taking messages at the first refusal (so that a new
    /// connection takes them), but none follows here: the rest were reported "not sent: the batch ended before this
    /// message", exit 2, a connection failure that never happened.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Reconnect_0_past_a_452_limit_reports_every_later_message_refused_as_before(bool pipelining)
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 3, pipelining: pipelining);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "0", .. Files(dir, 30)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 30, run.Output);
        messages.Skip(3).Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "refused" && m.GetProperty("mailReply").GetProperty("code").GetInt32() == 452, run.Output);
        run.ExitCode.Should().Be(ExitCodes.SenderRefused);
        summary.GetProperty("connections").GetInt32().Should().Be(1);
    }

    /// <summary>
    /// The first connection's first MAIL refused with 452 4.5.3 (no work done: no new connection follows, as for a 421):
    /// every message is reported refused with that reply, as before, not "not sent: the batch ended" (exit 2).
    /// </summary>
    [Fact]
    public async Task A_452_limit_on_the_first_MAIL_reports_every_message_refused_as_before()
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 0, pipelining: false);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 6)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 6, run.Output);
        messages.Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "refused" && m.GetProperty("mailReply").GetProperty("code").GetInt32() == 452, run.Output);
        run.ExitCode.Should().Be(ExitCodes.SenderRefused);
        summary.GetProperty("connections").GetInt32().Should().Be(1);
    }

    /// <summary>EHLO refused on the new connections: they are not used; the rest is reported not sent with the refusal, once each.</summary>
    [Fact]
    public async Task EHLO_refused_on_new_connections_reports_the_rest_not_sent_once()
    {
        await using var server = new Breaker19Server
        {
            Keywords = (connection, _) => connection == 1 ? ["PIPELINING", "8BITMIME"] : ["554 5.7.1 brk19.test no more for you"],
            OnCommand = (connection, ends, line) => LimitAtMail(connection, ends, line),
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 4)]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent"], run.Output + run.Error);
        messages[3].GetProperty("error").GetString().Should().Contain("554 5.7.1").And.Contain("connection 3");
        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
    }

    /// <summary>
    /// A message with several recipients, one refused, then a 421 at the second RCPT of the next (its first recipient
    /// accepted): the first is accepted for the recipients that were; the second was not sent (the connection ended
    /// before its data), so it goes on the new connection with the rest; each message's data once.
    /// </summary>
    [Fact]
    public async Task Recipients_refused_and_a_421_among_them_are_reported_truthfully_across_connections()
    {
        await using var server = new Breaker19Server
        {
            OnCommand = (connection, ends, line) =>
                line.Contains("<nobody@", StringComparison.OrdinalIgnoreCase) ? "550 5.1.1 no such user"
                : line.Contains("<closer@", StringComparison.OrdinalIgnoreCase) && connection == 1 ? "421 4.3.2 brk19.test closing"
                : line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? "250 2.1.5 Ok" : "250 2.1.0 Ok",
        };
        using var dir = new TempDirectory();
        string[] files =
        [
            dir.File("m1.eml", Message(1).Replace("To: b@example.test", "To: b@example.test, nobody@example.test, c@example.test", StringComparison.Ordinal)),
            dir.File("m2.eml", Message(2).Replace("To: b@example.test", "To: b@example.test, closer@example.test", StringComparison.Ordinal)),
            dir.File("m3.eml", Message(3)),
            dir.File("m4.eml", Message(4)),
        ];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. files]);

        var (messages, summary) = Parse(run);
        InOrderOnce(messages, 4, run.Output);
        Truthful(messages, server, run);
        Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted", "accepted"], run.Output + run.Error);
        messages[0].GetProperty("recipients").EnumerateArray().Select(r => r.GetProperty("accepted").GetBoolean()).Should().Equal([true, false, true]);
        server.EndsOfData.Should().Equal([(1, "m1"), (2, "m2"), (2, "m3"), (2, "m4")]);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
    }

    /// <summary>
    /// A large file cut short while its content is being sent (after 354, past the part already read): the rest of the
    /// file was missing, and the message was completed with the final dot and accepted, delivered in part (4.3 of 8 MB with an 8 MB file).
    /// Now the read fails: MailPipe closes the connection without the dot, the message is reported not sent, and the rest
    /// goes on a new connection. A file that grows meanwhile is sent with the length it had (SIZE declared it so).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_large_file_changed_while_it_is_sent_is_never_delivered_in_part(bool truncate)
    {
        using var dir = new TempDirectory();
        // 40 MB, changed once the server read 2 MB: the client is then at most what the sockets buffer (a few MB) ahead,
        // far from the 20 MB it is cut to (with 8 MB, a loaded machine had sometimes sent it all before the change).
        var files = Files(dir, 3, i => i == 2 ? 40_000_000 : 0);
        var original = new FileInfo(files[1]).Length;
        var changed = false;
        await using var server = new Breaker19Server
        {
            DataRead = (_, octets) =>
            {
                if (octets > 2_000_000 && !changed)
                {
                    changed = true;
                    var written = File.GetLastWriteTimeUtc(files[1]);
                    using (var file = new FileStream(files[1], FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
                    {
                        if (truncate)
                        {
                            file.SetLength(20_000_000);
                        }
                        else
                        {
                            file.Seek(0, SeekOrigin.End);
                            file.Write(Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("appended while it was sent\r\n", 1000))));
                        }
                    }

                    File.SetLastWriteTimeUtc(files[1], written); // as a tool that keeps the time would
                }
            },
        };

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. files]);

        var (messages, _) = Parse(run);
        InOrderOnce(messages, 3, run.Output);
        changed.Should().BeTrue();
        Truthful(messages, server, run);
        if (truncate)
        {
            Outcomes(messages).Should().Equal(["accepted", "notSent", "accepted"], run.Output + run.Error);
            messages[1].GetProperty("error").GetString().Should().Contain("shorter than when it was read");
            server.EndsOfData.Should().Equal([(1, "m1"), (2, "m3")], "a message cut short is never completed with the final dot");
        }
        else
        {
            Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted"], run.Output + run.Error);
            server.Octets.Single(o => o.Subject == "m2").Octets.Should().Be(original, "what SIZE declared, not what was appended");
        }
    }
}
