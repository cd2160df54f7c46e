using System.Text.Json;

namespace MailPipe.Cli.Tests;

/// <summary>
/// A server with a recipient limit per transaction answers the RCPTs past it with <c>452 4.5.3 Too many recipients</c>
/// (RFC 5321 §4.5.3.1.10, §3.3): the client is to send the message to them in a later transaction. <c>mailpipe
/// send</c> reported such a message accepted (exit 0) with those recipients refused, and they never got it. It now
/// sends the same content to exactly them in follow-up transactions, each recipient once, one result per message.
/// </summary>
public sealed class TooManyRecipientsTests
{
    private static (List<JsonElement> Messages, JsonElement Summary) Parse(CliRunner.Run run)
    {
        var lines = run.OutputLines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        lines.Should().NotBeEmpty(run.Error);
        lines[^1].GetProperty("type").GetString().Should().Be("summary");
        return (lines.SkipLast(1).ToList(), lines[^1]);
    }

    private static string[] Rcpts(string prefix, int count) => [.. Enumerable.Range(1, count).Select(i => $"{prefix}{i}@example.test")];

    private static string File(TempDirectory dir, string subject, string[] recipients) =>
        dir.File($"{subject}.eml", $"From: a@example.test\r\nTo: {string.Join(", ", recipients)}\r\nSubject: {subject}\r\n\r\nbody of {subject}\r\n");

    private static IEnumerable<(string Address, int Code, bool Accepted)> Recipients(JsonElement message) =>
        message.GetProperty("recipients").EnumerateArray().Select(r => (r.GetProperty("address").GetString()!, r.GetProperty("code").GetInt32(), r.GetProperty("accepted").GetBoolean()));

    [Fact]
    public async Task Serve_max_recipients_every_recipient_gets_the_message_once_in_follow_up_transactions()
    {
        using var inbox = new TempDirectory();
        using var dir = new TempDirectory();
        await using var serve = await ServeHost.StartAsync(inbox.Path, "--max-recipients", "3", "--json");
        var m1 = Rcpts("one", 7);
        var m2 = Rcpts("two", 1);
        var m3 = Rcpts("three", 5);

        var run = await CliRunner.RunAsync(["send", "--server", serve.Address, "--json", File(dir, "m1", m1), File(dir, "m2", m2), File(dir, "m3", m3)]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal([1, 2, 3], "one entry per message, in input order");
        messages.Select(m => m.GetProperty("transactions").GetInt32()).Should().Equal(3, 1, 2);
        messages.Should().OnlyContain(m => m.GetProperty("outcome").GetString() == "accepted");
        Recipients(messages[0]).Select(r => r.Address).Should().Equal(m1, "every recipient, in envelope order");
        messages.SelectMany(Recipients).Should().OnlyContain(r => r.Accepted && r.Code == 250, "the 452 is replaced by the reply of the transaction that took the recipient");
        summary.GetProperty("accepted").GetInt32().Should().Be(3);
        summary.GetProperty("connections").GetInt32().Should().Be(1);

        var saved = (await serve.WaitForLinesAsync("\"type\":\"message\"", 6)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        saved.Should().HaveCount(6, "3 + 1 + 2 transactions");
        var delivered = saved.SelectMany(s => s.GetProperty("to").EnumerateArray().Select(t => t.GetString())).ToList();
        delivered.Should().BeEquivalentTo(m1.Concat(m2).Concat(m3), "each recipient got the message exactly once");
        foreach (var file in saved.Select(s => s.GetProperty("file").GetString()!))
        {
            System.IO.File.ReadAllText(file).Should().Contain("Subject: m").And.Contain("body of m", "the same content each time");
        }
    }

    [Fact]
    public async Task Text_output_says_how_many_transactions_it_took()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, File(dir, "m1", Rcpts("r", 3))]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        run.Output.Should().Contain("m1.eml: accepted (exit 0), in 2 transactions");
        run.Output.Should().NotContain("(refused)");
        server.Deliveries("m1").Should().BeEquivalentTo(Rcpts("r", 3));
        server.Accepted.Select(a => a.Recipients.Length).Should().Equal(2, 1);
    }

    [Fact]
    public async Task A_452_with_another_enhanced_code_is_not_sent_again()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 1, tooMany: "452 4.2.2 Mailbox full");
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", File(dir, "m1", Rcpts("r", 2))]);

        run.ExitCode.Should().Be(ExitCodes.Success, "partial delivery is exit 0, as before");
        var (messages, _) = Parse(run);
        messages[0].GetProperty("transactions").GetInt32().Should().Be(1);
        Recipients(messages[0]).Should().Equal(("r1@example.test", 250, true), ("r2@example.test", 452, false));
        server.Accepted.Should().ContainSingle();
    }

    [Fact]
    public async Task A_refused_follow_up_leaves_its_recipients_refused_with_its_reply()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2, endOfData: n => n == 2 ? "554 5.7.1 Rejected by policy" : null);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", File(dir, "m1", Rcpts("r", 4))]);

        run.ExitCode.Should().Be(ExitCodes.Success, "the message was accepted for some recipients: exit 0 for partial delivery, as the README's table says; " + run.Output + run.Error);
        var (messages, _) = Parse(run);
        var message = messages.Should().ContainSingle().Subject;
        message.GetProperty("outcome").GetString().Should().Be("accepted");
        message.GetProperty("transactions").GetInt32().Should().Be(2);
        Recipients(message).Should().Equal(("r1@example.test", 250, true), ("r2@example.test", 250, true), ("r3@example.test", 554, false), ("r4@example.test", 554, false));
        message.GetProperty("error").GetString().Should().Contain("follow-up transaction 2 for 2 recipients refused").And.Contain("554 5.7.1");
        server.Deliveries("m1").Should().Equal("r1@example.test", "r2@example.test");
        server.Accepted.Should().ContainSingle("a refused follow-up ends it: no third transaction");
    }

    [Fact]
    public async Task A_follow_up_of_unknown_outcome_makes_exit_7()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2, endOfData: n => n == 3 ? string.Empty : null); // 1: m1, 2: m2 (pipelined), 3: m1's follow-up
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", File(dir, "m1", Rcpts("r", 3)), File(dir, "m2", Rcpts("s", 1))]);

        run.ExitCode.Should().Be(ExitCodes.OutcomeUnknown, run.Output + run.Error);
        var (messages, _) = Parse(run);
        messages.Select(m => m.GetProperty("index").GetInt32()).Should().Equal(1, 2);
        messages[0].GetProperty("exitCode").GetInt32().Should().Be(ExitCodes.OutcomeUnknown, run.Output);
        messages[0].GetProperty("transactions").GetInt32().Should().Be(2);
        messages[0].GetProperty("recipients")[2].GetProperty("accepted").GetBoolean().Should().BeFalse();
        messages[0].GetProperty("error").GetString().Should().Contain("outcome unknown");
        messages[1].GetProperty("outcome").GetString().Should().Be("accepted", "m2 went in the pipelined batch before the follow-up");
    }

    [Fact]
    public async Task Follow_ups_left_by_a_session_that_ended_go_on_the_new_connection()
    {
        // Two messages per session: both go in the first session's batch, whose next MAIL (a follow-up) gets 421 and the close.
        await using var server = new RecipientLimitServer(maxRecipients: 2, perSession: 2);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", File(dir, "m1", Rcpts("r", 4)), File(dir, "m2", Rcpts("s", 3))]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, summary) = Parse(run);
        messages.Select(m => m.GetProperty("transactions").GetInt32()).Should().Equal(2, 2);
        messages.SelectMany(Recipients).Should().OnlyContain(r => r.Accepted);
        summary.GetProperty("connections").GetInt32().Should().Be(2);
        server.Deliveries("m1").Should().BeEquivalentTo(Rcpts("r", 4), "each recipient once");
        server.Deliveries("m2").Should().BeEquivalentTo(Rcpts("s", 3));
        server.Accepted.Select(a => a.Connection).Should().Equal(1, 1, 2, 2);
        run.Error.Should().Contain("on connection 2");
    }

    /// <summary>A file over 1 MiB is streamed, opened again for each send; standard input over 1 MiB is spooled to a temporary file, kept until the end.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_large_file_or_standard_input_is_sent_whole_in_each_transaction(bool standardInput)
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2);
        using var dir = new TempDirectory();
        var line = new string('x', 76) + "\r\n";
        var content = System.Text.Encoding.ASCII.GetBytes($"From: a@example.test\r\nTo: {string.Join(", ", Rcpts("r", 3))}\r\nSubject: big\r\n\r\n" + string.Concat(Enumerable.Repeat(line, 2 * 1024 * 1024 / line.Length)));
        var path = dir.File("big.eml", content);
        var environment = new CliEnvironment(() => new MemoryStream(content, writable: false), OutputIsTerminal: false, ErrorIsTerminal: false);
        var output = new System.IO.StringWriter(new System.Text.StringBuilder()) { NewLine = "\n" };
        var error = new System.IO.StringWriter(new System.Text.StringBuilder()) { NewLine = "\n" };

        var exit = await Program.RunAsync(["send", "--server", server.Address, "--json", standardInput ? "-" : path], output, error, environment, CancellationToken.None);

        exit.Should().Be(ExitCodes.Success, output.ToString() + error);
        var (messages, _) = Parse(new CliRunner.Run(exit, output.ToString(), error.ToString()));
        messages[0].GetProperty("transactions").GetInt32().Should().Be(2);
        server.Deliveries("big").Should().BeEquivalentTo(Rcpts("r", 3));
        server.DataLengths.Select(d => d.Length).Should().Equal(content.Length, content.Length);
    }

    [Fact]
    public async Task Without_a_new_connection_the_recipients_left_are_listed_refused()
    {
        await using var server = new RecipientLimitServer(maxRecipients: 2, perSession: 1);
        using var dir = new TempDirectory();

        var run = await CliRunner.RunAsync(["send", "--server", server.Address, "--json", "--reconnect", "0", File(dir, "m1", Rcpts("r", 3))]);

        run.ExitCode.Should().Be(ExitCodes.Success, run.Output + run.Error);
        var (messages, _) = Parse(run);
        messages[0].GetProperty("transactions").GetInt32().Should().Be(1);
        Recipients(messages[0]).Should().Equal(("r1@example.test", 250, true), ("r2@example.test", 250, true), ("r3@example.test", 452, false));
        messages[0].GetProperty("error").GetString().Should().Contain("1 recipient refused as too many not sent the message again");
        server.Deliveries("m1").Should().Equal("r1@example.test", "r2@example.test");
    }
}
