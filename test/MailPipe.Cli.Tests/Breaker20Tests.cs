using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Breaker session 20: hostile scripted servers against <c>mailpipe send</c>'s resend of a message refused with 421 at
/// its end of data, follow-ups counted against <c>--max-per-connection</c>, and the summary of a last connection that
/// could not be used. Each test checks the invariants whatever the server does: each message reported once, in order,
/// with counts that match; nothing accepted twice; an unknown outcome never sent again; the process ends.
/// </summary>
public sealed class Breaker20Tests
{
    private const string Closing = "421 4.3.2 brk20b.test shutting down";

    private static (List<JsonElement> Messages, JsonElement Summary) Parse(CliRunner.Run run)
    {
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().NotBeEmpty(run.Error);
        lines[^1].GetProperty("type").GetString().Should().Be("summary", run.Output);
        return (lines.SkipLast(1).ToList(), lines[^1]);
    }

    /// <summary>One result per message in order, and the summary's counts are the lines' counts.</summary>
    private static (List<JsonElement> Messages, JsonElement Summary) Consistent(CliRunner.Run run, int count)
    {
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal(Enumerable.Range(1, count), run.Output + run.Error);
        var outcomes = messages.Select(m => m.GetProperty("outcome").GetString()).ToList();
        summary.GetProperty("messages").GetInt32().Should().Be(count);
        summary.GetProperty("accepted").GetInt32().Should().Be(outcomes.Count(o => o == "accepted"), run.Output);
        summary.GetProperty("refused").GetInt32().Should().Be(outcomes.Count(o => o == "refused"), run.Output);
        summary.GetProperty("unknown").GetInt32().Should().Be(outcomes.Count(o => o == "unknown"), run.Output);
        summary.GetProperty("notSent").GetInt32().Should().Be(outcomes.Count(o => o == "notSent"), run.Output);
        summary.GetProperty("exitCode").GetInt32().Should().Be(run.ExitCode);
        foreach (var message in messages)
        {
            message.GetProperty("transactions").GetInt32().Should().BeGreaterThanOrEqualTo(1);
        }

        return (messages, summary);
    }

    private static string[] Files(TempDirectory dir, int count, int bodyLines = 1) =>
        [.. Enumerable.Range(1, count).Select(i => dir.File($"m{i:D3}.eml", $"From: a@example.test\r\nTo: b@example.test\r\nSubject: m{i}\r\n\r\n{string.Concat(Enumerable.Repeat($"body {i} {new string('x', 70)}\r\n", bodyLines))}"))];

    private static string[] Keywords(bool chunking) => chunking ? ["PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES", "8BITMIME"] : ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"];

    /// <summary>
    /// A server that answers every end of data with 421, on every connection: it ends (within --reconnect), every
    /// message once, none accepted, none read more than twice, exit 2.
    /// </summary>
    [Theory]
    [InlineData(null, false)]
    [InlineData(null, true)]
    [InlineData("0", false)]
    [InlineData("1", true)]
    [InlineData("5", false)]
    [InlineData("5", true)]
    public async Task A_421_to_every_end_of_data_ends_with_each_message_reported_once(string? reconnect, bool chunking)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking),
            OnEndOfData = (_, _, _) => Closing,
        };
        using var dir = new TempDirectory();
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, .. Files(dir, 4)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Consistent(run, 4);
        messages.Should().NotContain(m => m.GetProperty("outcome").GetString() == "accepted");
        server.EndsOfData.GroupBy(e => e.Subject).Should().OnlyContain(g => g.Count() <= 2, "sent again once at most");
        summary.GetProperty("connections").GetInt32().Should().Be(server.Connections);
        foreach (var message in messages)
        {
            // A message the server read and answered 421 to is refused with it; one it never read was not sent.
            var subject = $"m{message.GetProperty("index").GetInt32()}";
            var read = server.EndsOfData.Count(e => e.Subject == subject);
            message.GetProperty("outcome").GetString().Should().Be(read > 0 ? "refused" : "notSent", $"{subject} was read {read} times; {run.Output}{run.Error}");
        }
    }

    /// <summary>
    /// A pipelined batch with CHUNKING where the 421 comes for m2 in the middle of the window: the messages after it are
    /// accepted once at most (never twice), an unknown one is never sent again, and every message is reported once.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_421_in_the_middle_of_a_pipelined_window_never_delivers_twice(bool chunking)
    {
        var accepted = new ConcurrentQueue<string>();
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking),
            OnEndOfData = (connection, ends, subject) =>
            {
                if (connection == 1 && subject == "m2")
                {
                    return Closing;
                }

                accepted.Enqueue(subject);
                return $"250 2.0.0 Ok {connection}.{ends}";
            },
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 6)]);

        var (messages, _) = Consistent(run, 6);
        accepted.Should().OnlyHaveUniqueItems("nothing delivered twice");
        foreach (var message in messages)
        {
            var subject = $"m{message.GetProperty("index").GetInt32()}";
            var outcome = message.GetProperty("outcome").GetString();
            if (outcome == "accepted")
            {
                accepted.Should().Contain(subject);
            }

            if (outcome == "unknown")
            {
                server.EndsOfData.Where(e => e.Subject == subject).Should().OnlyContain(e => e.Connection == 1, "an unknown outcome is never sent again");
            }
        }

        messages[1].GetProperty("outcome").GetString().Should().Be("accepted", "m2 goes again on connection 2; " + run.Output + run.Error);
    }

    /// <summary>
    /// BDAT in several chunks (a message over the 256 KiB chunk size): a 421 to a middle chunk of m2, or to its last.
    /// Either way the server took nothing of m2 on connection 1; m2 is reported once and accepted at most once.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_421_to_a_middle_BDAT_chunk_or_the_last_reports_the_message_once(bool middle)
    {
        var accepted = new ConcurrentQueue<string>();
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking: true),
            ChunkReply = (connection, ends, chunks) => middle && connection == 1 && ends == 1 && chunks == 2 ? Closing : null,
            OnEndOfData = (connection, ends, subject) =>
            {
                if (!middle && connection == 1 && subject == "m2")
                {
                    return Closing;
                }

                accepted.Enqueue(subject);
                return $"250 2.0.0 Ok {connection}.{ends}";
            },
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 3, bodyLines: 9000)]);

        var (messages, summary) = Consistent(run, 3);
        accepted.Should().OnlyHaveUniqueItems("nothing delivered twice");
        messages.Select(m => m.GetProperty("outcome").GetString()).Should().Equal(["accepted", "accepted", "accepted"], run.Output + run.Error);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
        run.ExitCode.Should().Be(ExitCodes.Success);
    }

    /// <summary>
    /// 421 to m2's end of data, then every new connection refused at its greeting: m2 is reported once, m2 was read once,
    /// the summary's error names the last connection, and the counts match.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("1")]
    public async Task A_421_at_the_end_of_data_then_the_reconnect_refused(string? reconnect)
    {
        await using var server = new Breaker19Server
        {
            Greeting = connection => connection == 1 ? "220 brk20b.test ESMTP" : "421 4.3.2 brk20b.test too busy",
            OnEndOfData = (connection, ends, subject) => subject == "m2" ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, .. Files(dir, 3)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Consistent(run, 3);
        messages[0].GetProperty("outcome").GetString().Should().Be("accepted");
        messages[1].GetProperty("outcome").GetString().Should().BeOneOf("refused", "notSent");
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(1);
        summary.GetProperty("connections").GetInt32().Should().Be(server.Connections);
        summary.GetProperty("error").GetString().Should().Contain($"connection {server.Connections} to").And.Contain("421 4.3.2");
    }

    /// <summary>
    /// 421 mixed with 452: m1 (3 recipients, 2 per transaction) is accepted with r3 refused as too many, m2 gets a 421 at
    /// its end of data; connection 2 takes m2 again and m1's follow-up. Each recipient gets each message once.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("1")]
    [InlineData("0")]
    public async Task A_421_at_the_end_of_data_with_a_follow_up_pending(string? maxPerConnection)
    {
        var deliveries = new ConcurrentQueue<(int Connection, string Subject, string Recipient)>();
        var recipients = new List<string>();
        await using var server = new Breaker19Server
        {
            OnCommand = (_, _, line) =>
            {
                if (line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase))
                {
                    recipients.Clear();
                    return "250 2.1.0 Ok";
                }

                if (line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase))
                {
                    if (recipients.Count >= 2)
                    {
                        return "452 4.5.3 Too many recipients";
                    }

                    recipients.Add(line[(line.IndexOf('<', StringComparison.Ordinal) + 1)..line.IndexOf('>', StringComparison.Ordinal)]);
                    return "250 2.1.5 Ok";
                }

                return "250 2.0.0 Ok";
            },
            OnEndOfData = (connection, ends, subject) =>
            {
                if (connection == 1 && subject == "m2")
                {
                    return Closing;
                }

                foreach (var recipient in recipients)
                {
                    deliveries.Enqueue((connection, subject, recipient));
                }

                return $"250 2.0.0 Ok {connection}.{ends}";
            },
        };
        using var dir = new TempDirectory();
        var m1 = dir.File("m1.eml", "From: a@example.test\r\nTo: r1@example.test, r2@example.test, r3@example.test\r\nSubject: m1\r\n\r\nbody\r\n");
        var m2 = dir.File("m2.eml", "From: a@example.test\r\nTo: s1@example.test\r\nSubject: m2\r\n\r\nbody\r\n");
        string[] options = maxPerConnection is null ? [] : ["--max-per-connection", maxPerConnection];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, m1, m2]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Consistent(run, 2);
        deliveries.Select(d => (d.Subject, d.Recipient)).Should().OnlyHaveUniqueItems("each recipient gets each message once");
        deliveries.Where(d => d.Subject == "m1").Select(d => d.Recipient).Should().BeEquivalentTo(["r1@example.test", "r2@example.test", "r3@example.test"], run.Output + run.Error);
        deliveries.Where(d => d.Subject == "m2").Select(d => d.Recipient).Should().Equal("s1@example.test");
        messages.SelectMany(m => m.GetProperty("recipients").EnumerateArray()).Should().OnlyContain(r => r.GetProperty("accepted").GetBoolean(), run.Output);
        messages[0].GetProperty("transactions").GetInt32().Should().Be(2);
        summary.GetProperty("connections").GetInt32().Should().Be(server.Connections);
        if (maxPerConnection == "1")
        {
            deliveries.GroupBy(d => (d.Connection, d.Subject)).GroupBy(g => g.Key.Connection).Should().OnlyContain(g => g.Count() <= 1, "one transaction per connection");
        }
    }

    /// <summary>
    /// Ctrl+C while the new connection for a message refused with 421 at its end of data waits for its greeting: the
    /// message is reported once, no connection follows, and the process ends.
    /// </summary>
    [Fact]
    public async Task An_interruption_while_the_resend_connects_reports_the_message_once()
    {
        using var seen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        await using var server = new Breaker19Server
        {
            Greeting = connection =>
            {
                if (connection > 1)
                {
                    seen.Set();
                    release.Wait(TimeSpan.FromSeconds(60));
                }

                return "220 brk20b.test ESMTP";
            },
            OnEndOfData = (connection, ends, subject) => subject == "m2" && connection == 1 ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();
        var files = Files(dir, 3);
        var run = await CliRunner.RunInterruptedAsync(["send", "--server", server.Address, "--json", .. files], seen, release, "the server reaches the point where the run is interrupted");
        var exit = run.ExitCode;
        var (messages, _) = Consistent(run, 3);
        messages[0].GetProperty("outcome").GetString().Should().Be("accepted");
        messages[1].GetProperty("outcome").GetString().Should().BeOneOf("refused", "notSent");
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(1);
        server.Connections.Should().Be(2);
    }
    /// <summary>
    /// A 421 to an end of data on a later connection that decided nothing else (here each connection takes one
    /// message, <c>--max-per-connection 1</c>): with <c>--reconnect 1</c> (above 0) the message is sent again once on
    /// the next connection, as on the first. Before: the connection counted as one that decided nothing, the one
    /// new connection allowed was used up, and m2 stood refused with the 421 (exit 2), never sent again.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_421_to_the_end_of_data_on_a_later_connection_is_sent_again_with_reconnect_1(bool chunking)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking),
            OnEndOfData = (connection, ends, subject) => connection == 2 && subject == "m2" ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "1", "--max-per-connection", "1", .. Files(dir, 3)]);

        var (messages, summary) = Consistent(run, 3);
        messages.Select(m => m.GetProperty("outcome").GetString()).Should().Equal(["accepted", "accepted", "accepted"], run.Output + run.Error);
        run.ExitCode.Should().Be(ExitCodes.Success);
        server.EndsOfData.Should().Equal([(1, "m1"), (2, "m2"), (3, "m2"), (4, "m3")]);
        summary.GetProperty("connections").GetInt32().Should().Be(4);
    }

    /// <summary>
    /// The same for a follow-up transaction (a recipient refused as too many): its 421 at the end of data on a
    /// connection that decided nothing else goes on the next connection once with <c>--reconnect 1</c>. Before: r3
    /// stood refused with the 421.
    /// </summary>
    [Fact]
    public async Task A_follow_up_refused_with_421_on_a_later_connection_is_sent_again_with_reconnect_1()
    {
        var endsOfData = 0;
        await using var server = new RecipientLimitServer(maxRecipients: 2, endOfData: n => Interlocked.Increment(ref endsOfData) == 2 ? Closing : null);
        using var dir = new TempDirectory();
        var file = dir.File("m1.eml", "From: a@example.test\r\nTo: r1@example.test, r2@example.test, r3@example.test\r\nSubject: m1\r\n\r\nbody\r\n");

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "1", "--max-per-connection", "1", file]);

        var (messages, summary) = Consistent(run, 1);
        messages[0].GetProperty("recipients").EnumerateArray().Should().OnlyContain(r => r.GetProperty("accepted").GetBoolean(), run.Output + run.Error);
        server.Deliveries("m1").Should().BeEquivalentTo(["r1@example.test", "r2@example.test", "r3@example.test"]);
        server.Accepted.Select(a => a.Connection).Should().Equal(1, 3);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
    }
    /// <summary>
    /// Without PIPELINING (one command at a time), a 421 to every end of data: it ends, each message is printed once in
    /// the text output, and the summary line counts them.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("0")]
    public async Task Without_pipelining_a_421_to_every_end_of_data_prints_each_message_once(string? reconnect)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => ["ENHANCEDSTATUSCODES", "8BITMIME"],
            OnEndOfData = (connection, _, subject) => subject == "m2" || connection > 1 ? Closing : "250 2.0.0 Ok",
        };
        using var dir = new TempDirectory();
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, .. options, .. Files(dir, 3)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        foreach (var name in new[] { "m001.eml", "m002.eml", "m003.eml" })
        {
            run.OutputLines.Count(l => l.Contains(name + ":", StringComparison.Ordinal)).Should().Be(1, $"{name} printed once; {run.Output}");
        }

        run.OutputLines.Should().ContainSingle(l => l.StartsWith("summary: 3 messages", StringComparison.Ordinal), run.Output);
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(reconnect is null ? 2 : 1);
    }

    /// <summary>
    /// The text summary after a last new connection that could not be used still says the connections had no TLS (the
    /// first was used in clear text). Before: ", no TLS" was left out whenever the summary had an error, which used to
    /// mean only that the first connection failed.
    /// </summary>
    [Fact]
    public async Task The_text_summary_says_no_TLS_when_a_later_connection_could_not_be_used()
    {
        await using var server = new Breaker19Server
        {
            Greeting = connection => connection == 1 ? "220 brk20b.test ESMTP" : "421 4.3.2 brk20b.test too busy",
            OnEndOfData = (connection, ends, subject) => subject == "m2" ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--reconnect", "1", .. Files(dir, 2)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        run.OutputLines.Should().ContainSingle(l => l.Contains("connections: 2 to", StringComparison.Ordinal))
            .Which.Should().Contain(", no TLS, not usable: connection 2 to");
    }
    /// <summary>
    /// Ctrl+C while the resent message's end of data waits for its reply on connection 2: its outcome is unknown (exit
    /// 7), it was read twice and never a third time, the one after it was not sent, and no third connection is made.
    /// </summary>
    [Fact]
    public async Task An_interruption_at_the_resent_messages_end_of_data_leaves_it_unknown()
    {
        using var seen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        await using var server = new Breaker19Server
        {
            OnEndOfData = (connection, ends, subject) =>
            {
                if (subject != "m2")
                {
                    return $"250 2.0.0 Ok {connection}.{ends}";
                }

                if (connection == 1)
                {
                    return Closing;
                }

                seen.Set();
                release.Wait(TimeSpan.FromSeconds(60));
                return null;
            },
        };
        using var dir = new TempDirectory();
        var files = Files(dir, 3);
        var run = await CliRunner.RunInterruptedAsync(["send", "--server", server.Address, "--json", .. files], seen, release, "the server reaches the point where the run is interrupted");
        var exit = run.ExitCode;
        var (messages, _) = Consistent(run, 3);
        messages.Select(m => m.GetProperty("outcome").GetString()).Should().Equal(["accepted", "unknown", "notSent"], run.Output + run.Error);
        exit.Should().Be(ExitCodes.OutcomeUnknown);
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(2);
        server.Connections.Should().Be(2);
    }
    /// <summary>
    /// A 421 to every end of data with one message per connection: each message is sent again once at most, so the run
    /// ends after a bounded number of connections (with <c>--reconnect 1</c>: the first message twice, then stop).
    /// </summary>
    [Theory]
    [InlineData("1", 2)]
    [InlineData("2", 4)]
    [InlineData("5", 10)]
    public async Task A_421_to_every_end_of_data_with_one_message_per_connection_ends(string reconnect, int maxConnections)
    {
        await using var server = new Breaker19Server { OnEndOfData = (_, _, _) => Closing };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", reconnect, "--max-per-connection", "1", .. Files(dir, 8)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Consistent(run, 8);
        server.EndsOfData.GroupBy(e => e.Subject).Should().OnlyContain(g => g.Count() == 2, "each message read is sent again once, and once only");
        summary.GetProperty("connections").GetInt32().Should().Be(server.Connections).And.BeLessThanOrEqualTo(maxConnections);
        messages.Count(m => m.GetProperty("outcome").GetString() == "refused").Should().Be(server.EndsOfData.Select(e => e.Subject).Distinct().Count());
    }
    /// <summary>
    /// A follow-up refused with 421 at its end of data waits for connection 2, and Ctrl+C comes while that connection
    /// waits for its greeting: the recipient stays refused with the 421, and the message's error says it was not sent
    /// again and why (the README: "reported as it stands, with a note in its error"). Before: only the 421 was named.
    /// </summary>
    [Fact]
    public async Task An_interruption_before_a_follow_ups_resend_is_noted_in_the_error()
    {
        using var seen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var recipients = 0;
        await using var server = new Breaker19Server
        {
            Greeting = connection =>
            {
                if (connection > 1)
                {
                    seen.Set();
                    release.Wait(TimeSpan.FromSeconds(60));
                }

                return "220 brk20b.test ESMTP";
            },
            OnCommand = (_, _, line) =>
            {
                if (line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase))
                {
                    recipients = 0;
                    return "250 2.1.0 Ok";
                }

                return line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? (++recipients > 2 ? "452 4.5.3 Too many recipients" : "250 2.1.5 Ok") : "250 2.0.0 Ok";
            },
            OnEndOfData = (connection, ends, _) => ends == 1 ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();
        var file = dir.File("m1.eml", "From: a@example.test\r\nTo: r1@example.test, r2@example.test, r3@example.test\r\nSubject: m1\r\n\r\nbody\r\n");
        var run = await CliRunner.RunInterruptedAsync(["send", "--server", server.Address, "--json", file], seen, release, "the server reaches the point where the run is interrupted");
        var (messages, _) = Consistent(run, 1);
        var message = messages[0];
        message.GetProperty("outcome").GetString().Should().Be("accepted");
        message.GetProperty("recipients")[2].GetProperty("accepted").GetBoolean().Should().BeFalse();
        message.GetProperty("recipients")[2].GetProperty("code").GetInt32().Should().Be(421);
        message.GetProperty("error").GetString().Should().Contain("421 4.3.2").And.Contain("not sent again").And.Contain("interrupted", run.Output);
        server.EndsOfData.Should().HaveCount(2);
    }
}
