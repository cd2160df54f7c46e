using System.Text;
using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Gaps of <c>mailpipe send</c>'s new connections: a 421 to a message's end of data (the server closing the channel
/// without taking the message, RFC 5321 §3.8) was reported as a refusal and never sent again; follow-up transactions
/// for recipients refused as too many went past <c>--max-per-connection</c>; a last connection that could not be
/// used left the summary's error empty and its time out of elapsed. Each test compares what the scripted server read
/// with what the tool reported.
/// </summary>
public sealed class Reconnect20Tests
{
    private const string Closing = "421 4.3.2 brk20.test shutting down";

    private static (List<JsonElement> Messages, JsonElement Summary) Parse(CliRunner.Run run)
    {
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().NotBeEmpty(run.Error);
        lines[^1].GetProperty("type").GetString().Should().Be("summary", run.Output);
        return (lines.SkipLast(1).ToList(), lines[^1]);
    }

    private static string[] Files(TempDirectory dir, int count) =>
        [.. Enumerable.Range(1, count).Select(i => dir.File($"m{i:D3}.eml", $"From: a@example.test\r\nTo: b@example.test\r\nSubject: m{i}\r\n\r\nbody {i}\r\n"))];

    private static string[] Outcomes(List<JsonElement> messages) => [.. messages.Select(m => m.GetProperty("outcome").GetString()!)];

    private static string[] Keywords(bool chunking) => chunking ? ["PIPELINING", "CHUNKING", "ENHANCEDSTATUSCODES", "8BITMIME"] : ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME"];

    /// <summary>A 421 to m2's end of data (DATA's dot, or BDAT LAST) on connection 1: m2 is sent again on connection 2 and counted once.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_421_to_the_end_of_data_is_sent_again_once_on_the_next_connection(bool chunking)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking),
            OnEndOfData = (connection, ends, subject) => connection == 1 && subject == "m2" ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 4)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal([1, 2, 3, 4], "one result per message, in order");
        Outcomes(messages).Should().Equal(["accepted", "accepted", "accepted", "accepted"], run.Output + run.Error);
        messages[1].GetProperty("finalReply").GetProperty("code").GetInt32().Should().Be(250, "its result is the new connection's");
        summary.GetProperty("messages").GetInt32().Should().Be(4);
        summary.GetProperty("accepted").GetInt32().Should().Be(4);
        summary.GetProperty("refused").GetInt32().Should().Be(0);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
        server.EndsOfData.Should().Equal([(1, "m1"), (1, "m2"), (2, "m2"), (2, "m3"), (2, "m4")]);
        run.Error.Should().Contain("on connection 2");
    }

    /// <summary>A single message refused so on the first connection (nothing decided there) still goes on a new one, once.</summary>
    [Fact]
    public async Task A_lone_message_refused_with_421_at_its_end_of_data_goes_on_a_new_connection()
    {
        await using var server = new Breaker19Server
        {
            OnEndOfData = (connection, ends, _) => connection == 1 ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };

        var run = await CliRunner.RunAsync("send", "--server", server.Address, "--json", "-f", "a@example.test", "-t", "b@example.test", "--subject", "m1", "--body", "x");

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        Outcomes(messages).Should().Equal(["accepted"]);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
        server.EndsOfData.Should().Equal([(1, "m1"), (2, "m1")]);
    }

    /// <summary>
    /// Sent again once only: a second 421 to its end of data stands (refused, exit 2); with <c>--reconnect 0</c> the
    /// first does. Either way it is one result, and the server read its end of data at most twice.
    /// </summary>
    [Theory]
    [InlineData(null, 2, 3)]
    [InlineData("0", 1, 1)]
    public async Task A_421_to_the_end_of_data_is_sent_again_at_most_once(string? reconnect, int readsOfM2, int connections)
    {
        await using var server = new Breaker19Server
        {
            OnEndOfData = (connection, ends, subject) => subject == "m2" ? Closing : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, .. Files(dir, 4)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal([1, 2, 3, 4]);
        messages[1].GetProperty("outcome").GetString().Should().Be("refused");
        messages[1].GetProperty("finalReply").GetProperty("code").GetInt32().Should().Be(421);
        summary.GetProperty("refused").GetInt32().Should().Be(1);
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(readsOfM2);
        summary.GetProperty("connections").GetInt32().Should().Be(connections);
        if (reconnect is null)
        {
            // Connection 2 took m2 alone and closed: a new connection that decided nothing, one more takes m3 and m4.
            Outcomes(messages).Should().Equal(["accepted", "refused", "accepted", "accepted"], run.Output + run.Error);
            server.EndsOfData.Where(e => e.Subject is "m3" or "m4").Should().Equal([(3, "m3"), (3, "m4")]);
        }
    }

    /// <summary>The connection lost after m2's end of data, no reply: its outcome is unknown, and it is never sent again.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_message_whose_end_of_data_got_no_reply_stays_unknown(bool chunking)
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => Keywords(chunking),
            OnEndOfData = (connection, ends, subject) => connection == 1 && subject == "m2" ? null : $"250 2.0.0 Ok {connection}.{ends}",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "2", .. Files(dir, 4)]);

        run.ExitCode.Should().Be(ExitCodes.OutcomeUnknown, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        var outcomes = Outcomes(messages);
        outcomes[..2].Should().Equal(["accepted", "unknown"], run.Output + run.Error);
        if (!chunking)
        {
            outcomes[2..].Should().Equal(["accepted", "accepted"], "with DATA, m3's content waits for its 354: not sent, so it goes on connection 2");
        }
        else
        {
            // With PIPELINING and CHUNKING m3 and m4 may have been written whole (BDAT LAST included) before the close.
            outcomes[2..].Should().OnlyContain(o => o == "accepted" || o == "unknown", run.Output);
        }

        summary.GetProperty("unknown").GetInt32().Should().Be(outcomes.Count(o => o == "unknown"));
        server.EndsOfData.Count(e => e.Subject == "m2").Should().Be(1, "a message that may have been delivered is never sent again");
        server.EndsOfData.Select(e => e.Subject).Should().OnlyHaveUniqueItems();
    }

    /// <summary>
    /// Follow-ups are transactions of their own: with <c>--max-per-connection 2</c>, m1 (7 recipients, 2 per
    /// transaction: 4 transactions) and m2 take 5 transactions, 2 + 2 + 1 over three connections, never 5 on the first.
    /// </summary>
    [Fact]
    public async Task Follow_up_transactions_count_against_max_per_connection()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2);
        using var dir = new TempDirectory();
        string[] m1 = [.. Enumerable.Range(1, 7).Select(i => $"r{i}@example.test")];
        var first = dir.File("m1.eml", $"From: a@example.test\r\nTo: {string.Join(", ", m1)}\r\nSubject: m1\r\n\r\nbody\r\n");
        var second = dir.File("m2.eml", "From: a@example.test\r\nTo: s1@example.test\r\nSubject: m2\r\n\r\nbody\r\n");

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--max-per-connection", "2", first, second]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal([1, 2]);
        messages.Select(m => m.GetProperty("transactions").GetInt32()).Should().Equal([4, 1]);
        messages.SelectMany(m => m.GetProperty("recipients").EnumerateArray()).Should().OnlyContain(r => r.GetProperty("accepted").GetBoolean());
        server.Accepted.GroupBy(a => a.Connection).Select(g => g.Count()).Should().Equal([2, 2, 1], "at most 2 transactions per connection, follow-ups included");
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        server.Deliveries("m1").Should().BeEquivalentTo(m1, "each recipient once");
        server.Deliveries("m2").Should().Equal("s1@example.test");
        run.Error.Should().NotContain("follow-up", "a planned new connection is not announced");
    }

    /// <summary>
    /// A follow-up transaction (for a recipient refused as too many) whose end of data gets a 421 goes on the next
    /// connection once, as a message does; with <c>--reconnect 0</c> its 421 stands for that recipient.
    /// </summary>
    [Theory]
    [InlineData(null)]
    [InlineData("0")]
    public async Task A_follow_up_refused_with_421_at_its_end_of_data_goes_on_the_next_connection_once(string? reconnect)
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2, endOfData: n => n == 2 ? Closing : null);
        using var dir = new TempDirectory();
        var file = dir.File("m1.eml", "From: a@example.test\r\nTo: r1@example.test, r2@example.test, r3@example.test\r\nSubject: m1\r\n\r\nbody\r\n");
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, file]);

        run.ExitCode.Should().Be(ExitCodes.Success, "accepted for r1 and r2 at least; " + run.Output + run.Error);
        var (messages, summary) = Parse(run);
        var message = messages.Should().ContainSingle().Subject;
        var r3 = message.GetProperty("recipients")[2];
        if (reconnect is null)
        {
            r3.GetProperty("accepted").GetBoolean().Should().BeTrue(run.Output + run.Error);
            summary.GetProperty("connections").GetInt32().Should().Be(2);
            server.Deliveries("m1").Should().BeEquivalentTo(["r1@example.test", "r2@example.test", "r3@example.test"]);
            server.Accepted.Select(a => a.Connection).Should().Equal(1, 2);
        }
        else
        {
            r3.GetProperty("accepted").GetBoolean().Should().BeFalse();
            r3.GetProperty("code").GetInt32().Should().Be(421);
            message.GetProperty("error").GetString().Should().Contain("421 4.3.2");
            summary.GetProperty("connections").GetInt32().Should().Be(1);
            server.Deliveries("m1").Should().Equal("r1@example.test", "r2@example.test");
        }
    }

    /// <summary>
    /// The server ends the first session at its limit (421 at the third MAIL) and greets the new connection, after a
    /// pause, with 421: the summary says why the rest was not sent, and its elapsed time includes that connection.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_reconnect_that_fails_is_the_summarys_error_and_in_its_elapsed_time(bool json)
    {
        await using var server = new Breaker19Server
        {
            Greeting = connection =>
            {
                if (connection == 1)
                {
                    return "220 brk20.test ESMTP";
                }

                Thread.Sleep(1500); // a slow refusal: its time must count
                return "421 4.3.2 brk20.test too busy, try later";
            },
            OnCommand = (_, ends, line) => line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) && ends >= 2 ? "421 4.7.0 brk20.test too many messages in this connection"
                : line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? "250 2.1.5 Ok" : "250 2.1.0 Ok",
        };
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--reconnect", "1", .. (json ? new[] { "--json" } : []), .. Files(dir, 5)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        server.Connections.Should().Be(2);
        run.Error.Should().Contain("connection 2 to").And.Contain("421 4.3.2");
        if (json)
        {
            var (messages, summary) = Parse(run);
            Outcomes(messages).Should().Equal(["accepted", "accepted", "notSent", "notSent", "notSent"]);
            summary.GetProperty("error").GetString().Should().Contain("connection 2 to").And.Contain("421 4.3.2").And.Contain("3 messages were not sent");
            summary.GetProperty("elapsedSeconds").GetDouble().Should().BeGreaterThanOrEqualTo(1.5, "the failed connection's time counts");
        }
        else
        {
            run.Output.Should().Contain("not usable: connection 2 to").And.Contain("3 messages were not sent");
            var seconds = double.Parse(run.Output.Split(" bytes accepted in ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
            seconds.Should().BeGreaterThanOrEqualTo(1.5);
        }
    }

    /// <summary>An AUTH refused on the new connection: the summary's error names it.</summary>
    [Fact]
    public async Task An_auth_refused_on_the_new_connection_is_the_summarys_error()
    {
        await using var server = new Breaker19Server
        {
            Keywords = (_, _) => ["PIPELINING", "ENHANCEDSTATUSCODES", "AUTH PLAIN"],
            OnCommand = (connection, ends, line) => line.StartsWith("AUTH", StringComparison.OrdinalIgnoreCase) ? (connection == 1 ? "235 2.7.0 ok" : "535 5.7.8 brk20.test credentials refused")
                : line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase) && ends >= 1 ? "421 4.7.0 brk20.test too many messages in this connection"
                : line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? "250 2.1.5 Ok" : "250 2.1.0 Ok",
        };
        using var dir = new TempDirectory();
        Environment.SetEnvironmentVariable("MAILPIPE_TEST_RECONNECT20_PASSWORD", "secret");

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--user", "u", "--password-env", "MAILPIPE_TEST_RECONNECT20_PASSWORD", "--auth", "plain", "--allow-cleartext-auth", .. Files(dir, 3)]);

        var (messages, summary) = Parse(run);
        Outcomes(messages).Should().Equal(["accepted", "notSent", "notSent"], run.Output + run.Error);
        summary.GetProperty("error").GetString().Should().Contain("connection 2 to").And.Contain("535 5.7.8").And.Contain("2 messages were not sent");
    }

    /// <summary>
    /// Ctrl+C while a follow-up transaction (for a recipient refused as too many) waits for the server: before its
    /// data, the message stands as accepted for the recipients accepted so far, the others still refused with 452 and
    /// the interruption named; after its end of data, the follow-up's outcome is unknown (exit 7).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_interruption_during_a_follow_up_reports_the_recipients_accepted_so_far(bool atEndOfData)
    {
        using var seen = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var recipients = 0;
        await using var server = new Breaker19Server
        {
            OnCommand = (_, ends, line) =>
            {
                if (line.StartsWith("MAIL", StringComparison.OrdinalIgnoreCase))
                {
                    recipients = 0;
                    if (ends == 1 && !atEndOfData)
                    {
                        seen.Set();
                        release.Wait(TimeSpan.FromSeconds(60)); // the follow-up's MAIL: no reply until the test is over
                        return null;
                    }

                    return "250 2.1.0 Ok";
                }

                return line.StartsWith("RCPT", StringComparison.OrdinalIgnoreCase) ? (++recipients > 2 ? "452 4.5.3 Too many recipients" : "250 2.1.5 Ok") : "250 2.0.0 Ok";
            },
            OnEndOfData = (connection, ends, _) =>
            {
                if (ends == 1)
                {
                    seen.Set();
                    release.Wait(TimeSpan.FromSeconds(60)); // the follow-up's end of data: no reply until the test is over
                    return null;
                }

                return $"250 2.0.0 Ok {connection}.{ends}";
            },
        };
        using var dir = new TempDirectory();
        var file = dir.File("m1.eml", "From: a@example.test\r\nTo: r1@example.test, r2@example.test, r3@example.test\r\nSubject: m1\r\n\r\nbody\r\n");
        var run = await CliRunner.RunInterruptedAsync(["send", "--server", server.Address, "--json", file], seen, release, "the follow-up reaches the server");
        var exit = run.ExitCode;
        var (messages, summary) = Parse(run);
        var message = messages.Should().ContainSingle().Subject;
        message.GetProperty("outcome").GetString().Should().Be("accepted", "r1 and r2 have it");
        var replies = message.GetProperty("recipients").EnumerateArray().Select(r => (r.GetProperty("address").GetString(), r.GetProperty("accepted").GetBoolean())).ToList();
        replies.Should().Equal(("r1@example.test", true), ("r2@example.test", true), ("r3@example.test", false));
        summary.GetProperty("accepted").GetInt32().Should().Be(1);
        run.Error.Should().Contain("interrupted");
        if (atEndOfData)
        {
            exit.Should().Be(ExitCodes.OutcomeUnknown, run.Output + run.Error);
            message.GetProperty("transactions").GetInt32().Should().Be(2);
            message.GetProperty("error").GetString().Should().Contain("outcome unknown");
        }
        else
        {
            exit.Should().Be(ExitCodes.Success, "accepted for some recipients (partial delivery), as when no follow-up can be sent; " + run.Output + run.Error);
            message.GetProperty("transactions").GetInt32().Should().Be(1);
            message.GetProperty("recipients")[2].GetProperty("code").GetInt32().Should().Be(452);
            message.GetProperty("error").GetString().Should().Contain("refused as too many not sent the message again").And.Contain("interrupted");
        }

        server.EndsOfData.Should().HaveCount(atEndOfData ? 2 : 1);
    }
}
