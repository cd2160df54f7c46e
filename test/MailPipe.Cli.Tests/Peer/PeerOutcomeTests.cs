using System.Text;

namespace MailPipe.Cli.Tests.Peer;

/// <summary>The documented exit codes and result lines, from the real servers' special addresses and faults.</summary>
[Collection(PeerCollection.Name)]
public class PeerOutcomeTests
{
    private static string[] Send(int port, string from, params string[] to)
    {
        List<string> args = ["send", "-s", Servers.At(port), "-f", from];
        foreach (var t in to)
        {
            args.AddRange(["-t", t]);
        }

        args.AddRange(["--subject", "peer", "--body", "x"]);
        return [.. args];
    }

    [Fact]
    public async Task The_tempfail_recipient_is_refused_with_450_and_exit_5()
    {
        var run = await Tool.RunAsync(Send(Servers.Postfix, "a@example.test", "tempfail@example.test"));

        run.ExitCode.Should().Be(5, run.ToString());
        run.Output.Should().Contain("to <tempfail@example.test>: 450 4.2.0").And.Contain("refused (exit 5)");
        run.Output.Should().Contain("0 accepted, 1 refused");
    }

    [Fact]
    public async Task An_unknown_recipient_next_to_a_good_one_is_still_exit_0_and_the_good_one_gets_it()
    {
        var good = Servers.Unique("good");

        var run = await Tool.RunAsync(Send(Servers.Postfix, "a@example.test", good, "unknown-peer@example.test"));

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("to <unknown-peer@example.test>: 550 5.1.1");
        (await Servers.PostfixMessagesAsync(good)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_sender_Exim_refuses_at_MAIL_is_exit_4_and_the_next_message_still_goes()
    {
        var rcpt = Servers.Unique("eximnext");
        using var files = new Files();
        var refused = files.Write("1.eml", $"From: refuse-mail@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");
        var good = files.Write("2.eml", $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: after\r\n\r\ny\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Exim), "--json", refused, good);

        run.ExitCode.Should().Be(4, run.ToString());
        run.Json[0].GetProperty("mailReply").GetProperty("code").GetInt32().Should().Be(550);
        run.Json[0].GetProperty("exitCode").GetInt32().Should().Be(4);
        run.Json[1].GetProperty("outcome").GetString().Should().Be("accepted");
    }

    [Fact]
    public async Task Four_domain_literal_recipients_past_Exims_error_limit_end_the_session_with_exit_2_not_a_refusal()
    {
        var run = await Tool.RunAsync(Send(Servers.Exim, "a@example.test", "w@[127.0.0.1]", "x@[127.0.0.1]", "y@[127.0.0.1]", "z@[127.0.0.1]", Servers.Unique("synprot")));

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("not sent (exit 2)").And.Contain("Too many syntax or protocol errors");
    }

    [Fact]
    public async Task A_message_refused_after_the_data_exits_6_and_is_not_stored()
    {
        var rcpt = Servers.Unique("eod");

        var run = await Tool.RunAsync(Send(Servers.Postfix, "eod-reject@example.test", rcpt));

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("final: 554 5.7.1").And.Contain("refused (exit 6)");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_temporary_refusal_after_the_data_is_exit_6_with_its_451()
    {
        var run = await Tool.RunAsync(Send(Servers.Postfix, "eod-tempfail@example.test", Servers.Unique("eodt")));

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("final: 451 4.3.0");
    }

    [Fact]
    public async Task A_batch_exits_with_the_highest_code_and_keeps_each_messages_own()
    {
        var good = Servers.Unique("batchgood");
        using var files = new Files();
        var ok = files.Write("1.eml", $"From: a@example.test\r\nTo: {good}\r\n\r\nx\r\n");
        var noRcpt = files.Write("2.eml", "From: a@example.test\r\nTo: unknown-x@example.test\r\n\r\nx\r\n");
        var eod = files.Write("3.eml", $"From: eod-reject@example.test\r\nTo: {good}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--json", ok, noRcpt, eod);

        run.ExitCode.Should().Be(6, run.ToString());
        run.Json[..3].Select(j => j.GetProperty("exitCode").GetInt32()).Should().Equal(0, 5, 6);
        run.Json[..3].Select(j => j.GetProperty("outcome").GetString()).Should().Equal("accepted", "refused", "refused");
        run.Summary.GetProperty("exitCode").GetInt32().Should().Be(6);
        (await Servers.PostfixMessagesAsync(good)).Should().ContainSingle("the refused one is not stored");
    }

    [Fact]
    public async Task A_message_over_the_servers_SIZE_is_not_sent_exit_6_and_the_next_one_goes()
    {
        var rcpt = Servers.Unique("size");
        using var files = new Files();
        var big = new StringBuilder($"From: a@example.test\r\nTo: {rcpt}\r\nSubject: big\r\n\r\n");
        var line = new string('x', 998) + "\r\n";
        while (big.Length < 10_600_000)
        {
            big.Append(line);
        }

        var large = files.Write("big.eml", big.ToString());
        var small = files.Write("small.eml", $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: small\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), large, small);

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain($"{large}: not sent (exit 6)").And.Contain($"{small}: accepted (exit 0)");
        var stored = await Servers.PostfixMessagesAsync(rcpt);
        stored.Should().ContainSingle().Which.Length.Should().BeLessThan(10_000);
    }

    [Fact]
    public async Task A_server_that_is_down_is_exit_2_with_the_reason_on_stderr_and_in_the_summary()
    {
        var port = Servers.Closed();

        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{port}", "-f", "a@example.test", "-t", "b@example.test", "--body", "x");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Output.Should().Contain("not sent (exit 2)").And.Contain("not usable:").And.Contain("refused");
        run.Error.Should().Contain("connection refused");
        run.Error.Should().NotContain("   at ");
    }

    [Fact]
    public async Task A_server_that_is_down_in_json_carries_the_reason_per_message_and_in_the_summary()
    {
        var run = await Tool.RunAsync("send", "-s", $"127.0.0.1:{Servers.Closed()}", "-f", "a@example.test", "-t", "b@example.test", "--json");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Json[0].GetProperty("outcome").GetString().Should().Be("notSent");
        run.Json[0].GetProperty("error").GetString().Should().Contain("refused");
        run.Summary.GetProperty("error").GetString().Should().Contain("refused");
        run.Summary.GetProperty("notSent").GetInt32().Should().Be(1);
    }

    [Fact]
    public async Task Starttls_against_the_implicit_TLS_port_times_out_with_exit_8_and_a_hint_at_tls()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixTls), "--starttls", "--timeout", "2", "-f", "a@example.test", "-t", "b@example.test");

        run.ExitCode.Should().Be(8, run.ToString());
        run.Error.Should().Contain("--tls");
    }

    [Fact]
    public async Task Tls_against_a_STARTTLS_port_is_exit_2_with_a_hint_at_starttls()
    {
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--tls", "--ca-file", Servers.Certificate, "-f", "a@example.test", "-t", "b@example.test");

        run.ExitCode.Should().Be(2, run.ToString());
        run.Error.Should().Contain("--starttls");
        run.Output.Should().Contain("not usable:");
    }

    [Fact]
    public async Task A_wrong_password_is_exit_3_and_the_password_never_shows()
    {
        const string wrong = "Wrong-Secret-4711";
        var rcpt = Servers.Unique("wrongpw");

        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", rcpt, "--body", "x", "--trace"],
            null,
            new Dictionary<string, string?> { ["PEER_PW"] = wrong });

        run.ExitCode.Should().Be(3, run.ToString());
        run.Output.Should().Contain("not sent (exit 3)").And.Contain("535");
        (run.Output + run.Error).Should().NotContain(wrong);
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_password_given_on_the_command_line_is_refused_without_echo_and_nothing_connects()
    {
        const string secret = "Cmdline-Secret-0815";

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password", secret, "-f", "a@example.test", "-t", "b@example.test");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("--password-env");
        (run.Output + run.Error).Should().NotContain(secret);
    }

    [Fact]
    public async Task The_secret_itself_given_to_password_env_is_not_echoed()
    {
        const string secret = "Test-Pass-123!";

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password-env", secret, "-f", "a@example.test", "-t", "b@example.test");

        run.ExitCode.Should().Be(1, run.ToString());
        (run.Output + run.Error).Should().NotContain(secret);
    }

    [Fact]
    public async Task An_unset_password_variable_is_exit_1_naming_it()
    {
        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Postfix), "--user", Servers.User, "--password-env", "PEER_UNSET_PW", "-f", "a@example.test", "-t", "b@example.test"],
            null,
            new Dictionary<string, string?> { ["PEER_UNSET_PW"] = null });

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("PEER_UNSET_PW");
        run.Output.Should().BeEmpty();
    }

    [Fact]
    public async Task The_submission_port_without_auth_refuses_the_recipient()
    {
        var rcpt = Servers.Unique("noauth");

        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Submission), "--starttls", "--ca-file", Servers.Certificate, "-f", "a@example.test", "-t", rcpt, "--body", "x"]);

        run.ExitCode.Should().BeOneOf([4, 5], run.ToString());
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task The_submission_port_without_starttls_offers_no_AUTH_and_auth_fails_with_exit_3()
    {
        var run = await Tool.RunAsync(
            ["send", "-s", Servers.At(Servers.Submission), "--user", Servers.User, "--password-env", "PEER_PW", "-f", "a@example.test", "-t", Servers.Unique(), "--body", "x"],
            null,
            new Dictionary<string, string?> { ["PEER_PW"] = Servers.Password });

        run.ExitCode.Should().Be(3, run.ToString());
        run.Error.Should().Contain("--starttls");
    }
}
