using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// Servers limit what one session may carry (OpenSMTPD: 452 4.5.3 to MAIL after 100 messages; Exim: 421 after
/// smtp_accept_max_per_connection, 554 and a close after smtp_accept_max_nonmail). <c>mailpipe send</c> sent a folder
/// over one connection, so every message after that point was reported not sent or refused although nothing of it was
/// taken and a new connection would take it. It now goes on over new connections with what the session did not take,
/// never with a message that was accepted, refused for its own sake, or whose outcome is unknown.
/// </summary>
public sealed class SessionLimitReconnectTests
{
    private static (List<JsonElement> Messages, JsonElement Summary) Parse(CliRunner.Run run)
    {
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().NotBeEmpty(run.Error);
        lines[^1].GetProperty("type").GetString().Should().Be("summary");
        return (lines.SkipLast(1).ToList(), lines[^1]);
    }

    private static string[] Files(TempDirectory dir, int count, Func<int, string>? recipient = null) =>
        [.. Enumerable.Range(1, count).Select(i => dir.File($"m{i:D3}.eml", $"From: a@example.test\r\nTo: {recipient?.Invoke(i) ?? "b@example.test"}\r\nSubject: m{i}\r\n\r\nbody {i}\r\n"))];

    private static void EveryMessageOnceInOrder(List<JsonElement> messages, int count)
    {
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal(Enumerable.Range(1, count), "each message is printed once, in input order");
    }

    [Theory]
    [InlineData(SessionLimit.MailRefused452, true)]
    [InlineData(SessionLimit.ServiceClosing421, true)]
    [InlineData(SessionLimit.MailRefused452, false)]
    [InlineData(SessionLimit.ServiceClosing421, false)]

    // A 421 to DATA or to the transaction's only recipient: reported refused (exit 2), not sent again, before (found by brk19).
    [InlineData(SessionLimit.DataClosing421, true)]
    [InlineData(SessionLimit.DataClosing421, false)]
    [InlineData(SessionLimit.RecipientClosing421, true)]
    [InlineData(SessionLimit.RecipientClosing421, false)]
    public async Task Messages_a_session_did_not_take_go_on_new_connections_and_arrive_once(SessionLimit limit, bool pipelining)
    {
        await using var server = new SessionLimitServer(limit, perSession: 3, pipelining: pipelining);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 8)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 8);
        messages.Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "accepted");
        summary.GetProperty("accepted").GetInt32().Should().Be(8);
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        server.Connections.Should().Be(3);
        server.Accepted.Select(a => a.Subject).Should().BeEquivalentTo(Enumerable.Range(1, 8).Select(i => $"m{i}"), "each message arrives exactly once");
        server.Accepted.Select(a => a.Connection).Should().Equal(1, 1, 1, 2, 2, 2, 3, 3);
        run.Error.Should().Contain("on connection 2").And.Contain("on connection 3");
    }

    /// <summary>
    /// Once MAIL is refused at the limit, the session takes no more messages: OpenSMTPD (no PIPELINING) answered each
    /// of the rest with 452, one round trip each, on every connection (a batch of n cost about n²/200 refusals).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_session_refused_at_its_limit_takes_no_more_messages(bool pipelining)
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 10, pipelining: pipelining);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 40)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 40);
        summary.GetProperty("connections").GetInt32().Should().Be(4);
        server.Accepted.Select(a => a.Subject).Should().BeEquivalentTo(Enumerable.Range(1, 40).Select(i => $"m{i}"));
        server.RefusedMails.Should().BeLessThanOrEqualTo(3 * 3, "a few messages in flight per session at most, not the 30 + 20 + 10 of the rest");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_whose_end_of_data_got_no_reply_is_unknown_and_never_sent_again(bool pipelining)
    {
        // Each session accepts 2 messages and then drops the connection after the next end of data without a reply.
        await using var server = new SessionLimitServer(SessionLimit.CloseAfterEndOfData, perSession: 2, pipelining: pipelining);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 7)]);

        run.ExitCode.Should().Be(ExitCodes.OutcomeUnknown, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 7);
        messages.Select(m => m.GetProperty("outcome").GetString()).Should().Equal("accepted", "accepted", "unknown", "accepted", "accepted", "unknown", "accepted");
        summary.GetProperty("connections").GetInt32().Should().Be(3);
        server.EndsOfData.Select(e => e.Subject).Should().OnlyHaveUniqueItems("no message's data is sent twice, least of all one of unknown outcome");
        server.EndsOfData.Should().HaveCount(7);
        server.Accepted.Select(a => a.Subject).Should().BeEquivalentTo(["m1", "m2", "m4", "m5", "m7"]);
    }

    [Fact]
    public async Task Reconnect_0_keeps_one_connection_as_before()
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 3);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "0", .. Files(dir, 5)]);

        run.ExitCode.Should().Be(ExitCodes.SenderRefused, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 5);
        messages.Skip(3).Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "refused" && m.GetProperty("mailReply").GetProperty("code").GetInt32() == 452);
        summary.GetProperty("connections").GetInt32().Should().Be(1);
        server.Connections.Should().Be(1);
        server.Accepted.Should().HaveCount(3);
    }

    [Theory]
    [InlineData(null, 3)]
    [InlineData("1", 2)]
    [InlineData("3", 4)]
    public async Task New_connections_that_decide_nothing_stop_after_the_reconnect_count(string? reconnect, int connections)
    {
        // The first session takes 2 messages and closes with 421; every later connection is greeted with 421.
        await using var server = new SessionLimitServer(SessionLimit.ServiceClosing421, perSession: 2, refuseGreeting: n => n > 1);
        using var dir = new TempDirectory();
        string[] options = reconnect is null ? [] : ["--reconnect", reconnect];

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. options, .. Files(dir, 5)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 5);
        messages.Take(2).Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "accepted");
        messages.Skip(2).Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "notSent"
            && m.GetProperty("exitCode").GetInt32() == ExitCodes.ConnectionFailed
            && m.GetProperty("error").GetString()!.Contains($"connection {connections} to", StringComparison.Ordinal));
        summary.GetProperty("connections").GetInt32().Should().Be(connections);
        server.Connections.Should().Be(connections);
        server.Accepted.Should().HaveCount(2);
        run.Error.Should().Contain("decided no message");
    }

    [Fact]
    public async Task A_first_connection_that_decides_nothing_is_not_followed_by_another()
    {
        // 421 to the very first MAIL: a server refusing service, not a limit per session.
        await using var server = new SessionLimitServer(SessionLimit.ServiceClosing421, perSession: 0);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", .. Files(dir, 3)]);

        run.ExitCode.Should().Be(ExitCodes.ConnectionFailed, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        EveryMessageOnceInOrder(messages, 3);
        summary.GetProperty("connections").GetInt32().Should().Be(1);
        server.Connections.Should().Be(1);
    }

    [Fact]
    public async Task Max_per_connection_spreads_the_batch_and_the_text_summary_counts_the_connections()
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 1000);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--max-per-connection", "2", "--reconnect", "0", .. Files(dir, 5)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        run.Output.Should().Contain("5 accepted").And.Contain($"  connections: 3 to 127.0.0.1:{server.Port}, no TLS\n");
        server.Accepted.Select(a => a.Connection).Should().Equal(1, 1, 2, 2, 3);
        server.Accepted.Select(a => a.Subject).Should().Equal("m1", "m2", "m3", "m4", "m5");

        // What was asked for is not a notice: one line per connection on standard error buried the others (a line each
        // of "N messages not taken after --max-per-connection 2: sending them on connection K" before).
        run.Error.Should().BeEmpty();
    }

    [Fact]
    public async Task One_connection_prints_the_summary_as_before()
    {
        await using var server = new SessionLimitServer(SessionLimit.MailRefused452, perSession: 1000);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, .. Files(dir, 2)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        run.Output.Should().Contain($"  connection: 127.0.0.1:{server.Port}, no TLS\n");
        run.Error.Should().BeEmpty();
    }

    [Theory]
    [InlineData("--reconnect", "-1")]
    [InlineData("--reconnect", "x")]
    [InlineData("--max-per-connection", "-2")]
    public async Task Counts_out_of_range_are_usage_errors(string option, string value)
    {
        var run = await CliRunner.RunAsync("send", "--server", "127.0.0.1:9", "--from", "a@example.test", "--to", "b@example.test", option, value);

        run.ExitCode.Should().Be(ExitCodes.UsageOrInput);
        run.Error.Should().Contain(option);
    }

    /// <summary>
    /// 4yz replies that say nothing about the session's count are no reason for a new connection: 451 4.3.0, or a
    /// rate limit (450 4.7.1); 452 4.5.3 and 421 are.
    /// </summary>
    [Theory]
    [InlineData("452 4.5.3 Too many recipients: Too many messages sent", true)]
    [InlineData("421 4.7.0 Too many messages", true)]
    [InlineData("421 closing", true)]
    [InlineData("451 4.3.0 try later", false)]
    [InlineData("450 4.7.1 Error: too much mail from 127.0.0.1", false)]
    [InlineData("452 4.3.1 Insufficient system storage", false)]
    [InlineData("552 5.5.3 Too many messages", false)]
    public void Session_limit_replies(string reply, bool limit)
    {
        var code = int.Parse(reply[..3], System.Globalization.CultureInfo.InvariantCulture);
        BatchSender.IsSessionLimitReply(new SmtpReply(code, [reply[4..]])).Should().Be(limit);
    }
}
