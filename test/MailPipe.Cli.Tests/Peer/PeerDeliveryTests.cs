using System.Text;

namespace MailPipe.Cli.Tests.Peer;

/// <summary>What reaches Postfix's Maildir, byte for byte, for the inputs a user gives <c>mailpipe send</c>.</summary>
[Collection(PeerCollection.Name)]
public class PeerDeliveryTests
{
    private static string Eml(string to, string subject = "peer", string body = "body\r\n", string from = "sender@example.test") =>
        $"From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\n\r\n{body}";

    [Fact]
    public async Task A_file_reaches_Postfix_byte_for_byte_with_its_envelope_from_the_fields()
    {
        var rcpt = Servers.Unique();
        using var files = new Files();
        var content = Eml(rcpt, body: "line 1\r\n.leading dot\r\n..two dots\r\n");
        var file = files.Write("m.eml", content);

        var run = await Tool.RunAsync("send", "--server", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle().Subject;
        Servers.AsSent(stored).Should().Equal(Encoding.ASCII.GetBytes(content));
        Servers.ReturnPath(stored).Should().Be("sender@example.test");
        run.OutputLines[0].Should().Be($"{file}: accepted (exit 0)");
        run.Output.Should().Contain("summary: 1 message: 1 accepted, 0 refused, 0 not sent, 0 unknown;").And.Contain("(exit 0)");
    }

    [Fact]
    public async Task Bare_LF_line_ends_arrive_as_CRLF_and_nothing_else_changes()
    {
        var rcpt = Servers.Unique("lf");
        using var files = new Files();
        var file = files.Write("lf.eml", $"From: a@example.test\nTo: {rcpt}\nSubject: lf\n\nline1\n.dot\n\nlast\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(rcpt)).Single();
        Encoding.ASCII.GetString(Servers.AsSent(stored)).Should().Be($"From: a@example.test\r\nTo: {rcpt}\r\nSubject: lf\r\n\r\nline1\r\n.dot\r\n\r\nlast\r\n");
    }

    [Fact]
    public async Task A_file_with_bare_LF_line_ends_is_accepted_by_a_server_that_forbids_bare_newlines()
    {
        // Postfix 2545: smtpd_forbid_bare_newline = yes. The tool must turn every LF into CRLF on the wire.
        var rcpt = Servers.Unique("strictnl");
        using var files = new Files();
        var file = files.Write("lf.eml", $"From: a@example.test\nTo: {rcpt}\nSubject: lf\n\nbody\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_STRICTNL_PORT") is { } p ? int.Parse(p, System.Globalization.CultureInfo.InvariantCulture) : 2545), file);

        run.ExitCode.Should().Be(0, run.ToString());
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task An_eml_without_a_blank_line_is_sent_as_a_header_section_only()
    {
        var rcpt = Servers.Unique("noblank");
        using var files = new Files();
        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: no body";
        var file = files.Write("nb.eml", content);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(rcpt)).Single();
        Encoding.ASCII.GetString(Servers.AsSent(stored)).Should().Be(content + "\r\n", "only the missing last line end is added");
    }

    [Fact]
    public async Task Bcc_recipients_get_the_message_and_no_stored_copy_shows_the_Bcc_field()
    {
        var to = Servers.Unique("to");
        var cc = Servers.Unique("cc");
        var bcc = Servers.Unique("bcc");
        using var files = new Files();
        var head = $"From: Jane <jane@example.test>\r\nTo: Bob <{to}>\r\nCc: {cc}\r\n";
        var rest = "Subject: bcc\r\n\r\nhidden\r\n";
        var file = files.Write("bcc.eml", head + $"Bcc: Hidden <{bcc}>\r\n" + rest);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        foreach (var rcpt in new[] { to, cc, bcc })
        {
            var stored = (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle().Subject;
            Servers.AsSent(stored).Should().Equal(Encoding.ASCII.GetBytes(head + rest), "Bcc is removed, every other byte kept");
            Servers.ReturnPath(stored).Should().Be("jane@example.test");
        }
    }

    [Fact]
    public async Task A_folded_Bcc_field_is_removed_with_its_continuation_lines()
    {
        var to = Servers.Unique("to");
        var bcc1 = Servers.Unique("bcc1");
        var bcc2 = Servers.Unique("bcc2");
        using var files = new Files();
        var file = files.Write("bcc.eml", $"From: a@example.test\r\nBcc: {bcc1},\r\n\t{bcc2}\r\nTo: {to}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(bcc2)).Single();
        Encoding.ASCII.GetString(Servers.AsSent(stored)).Should().Be($"From: a@example.test\r\nTo: {to}\r\n\r\nx\r\n");
        (await Servers.PostfixMessagesAsync(bcc1)).Should().ContainSingle();
        (await Servers.PostfixMessagesAsync(to)).Should().ContainSingle();
    }

    [Fact]
    public async Task Sender_field_wins_over_From_for_the_envelope()
    {
        var rcpt = Servers.Unique();
        using var files = new Files();
        var file = files.Write("s.eml", $"From: author@example.test\r\nSender: secretary@example.test\r\nTo: {rcpt}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        Servers.ReturnPath((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Be("secretary@example.test");
    }

    [Fact]
    public async Task From_and_to_options_override_the_fields_and_the_file_goes_unchanged_Bcc_included()
    {
        var optionRcpt = Servers.Unique("opt");
        var fieldRcpt = Servers.Unique("field");
        using var files = new Files();
        var content = $"From: a@example.test\r\nTo: {fieldRcpt}\r\nBcc: {fieldRcpt}\r\n\r\nx\r\n";
        var file = files.Write("o.eml", content);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "bounce@example.test", "-t", optionRcpt, file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(optionRcpt)).Single();
        Servers.AsSent(stored).Should().Equal(Encoding.ASCII.GetBytes(content), "with --to the file is sent unchanged");
        Servers.ReturnPath(stored).Should().Be("bounce@example.test");
        Servers.PostfixCount(fieldRcpt).Should().Be(0);
    }

    [Fact]
    public async Task The_null_reverse_path_is_sent_as_MAIL_FROM_empty()
    {
        var rcpt = Servers.Unique();
        using var files = new Files();
        var file = files.Write("n.eml", Eml(rcpt));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "<>", file, "--trace");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("C: MAIL FROM:<>");
        Servers.ReturnPath((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Be("MAILER-DAEMON", "Postfix's name for the null sender");
    }

    [Fact]
    public async Task A_missing_file_among_good_ones_loses_nothing_and_is_named()
    {
        var rcpt = Servers.Unique("missing");
        using var files = new Files();
        var first = files.Write("1.eml", Eml(rcpt, "one"));
        var third = files.Write("3.eml", Eml(rcpt, "three"));
        var missing = Path.Combine(files.Path, "2.eml");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), first, missing, third);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain($"{missing}: not sent (exit 1)").And.Contain($"{first}: accepted (exit 0)").And.Contain($"{third}: accepted (exit 0)");
        run.Output.Should().Contain("3 messages: 2 accepted, 0 refused, 1 not sent, 0 unknown");
        run.Output.Should().NotContain("   at ", "no stack trace");
        var stored = await Servers.PostfixMessagesAsync(rcpt, 2);
        stored.Select(s => Encoding.ASCII.GetString(s)).Should().ContainSingle(s => s.Contains("Subject: one")).And.ContainSingle(s => s.Contains("Subject: three"));
    }

    [Fact]
    public async Task An_empty_file_is_not_sent_and_the_others_go()
    {
        var rcpt = Servers.Unique("empty");
        using var files = new Files();
        var empty = files.Write("empty.eml", "");
        var good = files.Write("good.eml", Eml(rcpt));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), empty, good);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain($"{empty}: not sent (exit 1)").And.Contain("empty");
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_directory_sends_only_its_eml_files_in_name_order()
    {
        var rcpt = Servers.Unique("dir");
        using var files = new Files();
        var dir = files.Sub("outbox");
        files.Write("outbox/b.eml", Eml(rcpt, "b"));
        files.Write("outbox/a.eml", Eml(rcpt, "a"));
        files.Write("outbox/notes.txt", Eml(rcpt, "txt"));
        files.Write("outbox/c.EML.bak", Eml(rcpt, "bak"));
        files.Write("outbox/.hidden.eml", Eml(rcpt, "hidden"));
        files.Sub("outbox/sub.eml");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), dir);

        run.ExitCode.Should().Be(0, run.ToString());
        run.OutputLines.Where(l => l.Contains(": accepted", StringComparison.Ordinal)).Should().Equal(
            $"{Path.Combine(dir, "a.eml")}: accepted (exit 0)", $"{Path.Combine(dir, "b.eml")}: accepted (exit 0)");
        var stored = await Servers.PostfixMessagesAsync(rcpt, 2);
        stored.Should().HaveCount(2);
    }

    [Fact]
    public async Task A_quoted_wildcard_sends_what_it_matches_and_a_wildcard_matching_nothing_is_a_usage_error()
    {
        var rcpt = Servers.Unique("wild");
        using var files = new Files();
        files.Write("2026-01.eml", Eml(rcpt, "jan"));
        files.Write("2026-02.eml", Eml(rcpt, "feb"));
        files.Write("2025-12.eml", Eml(rcpt, "dec"));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), Path.Combine(files.Path, "2026-*.eml"));
        var none = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), Path.Combine(files.Path, "1999-*.eml"));

        run.ExitCode.Should().Be(0, run.ToString());
        run.Output.Should().Contain("2 messages: 2 accepted");
        var stored = await Servers.PostfixMessagesAsync(rcpt, 2);
        stored.Select(s => Encoding.ASCII.GetString(s)).Should().NotContain(s => s.Contains("Subject: dec"));
        none.ExitCode.Should().Be(1, none.ToString());
        none.Output.Should().BeEmpty("a usage error makes no connection and prints no result");
        none.Error.Should().Contain("1999-*.eml");
    }

    [Fact]
    public async Task A_directory_without_eml_files_is_a_usage_error()
    {
        using var files = new Files();
        var dir = files.Sub("empty-outbox");
        files.Write("empty-outbox/readme.txt", "no mail here");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), dir);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain(dir);
        run.ErrorLines.Length.Should().BeLessThanOrEqualTo(2, "a usage problem is one line, maybe followed by the pointer to --help");
    }

    [Fact]
    public async Task A_recipient_given_three_ways_is_one_RCPT_and_one_delivery()
    {
        var rcpt = Servers.Unique("dup");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "-t", $"<{rcpt}>", "-t", $"Name <{rcpt}>", "--body", "x", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.ErrorLines.Count(l => l.StartsWith("C: RCPT TO:", StringComparison.Ordinal)).Should().Be(1);
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_recipient_repeated_across_To_Cc_and_Bcc_fields_is_one_RCPT()
    {
        var rcpt = Servers.Unique("duph");
        using var files = new Files();
        var file = files.Write("d.eml", $"From: a@example.test\r\nTo: {rcpt}, \"X\" <{rcpt.ToUpperInvariant().Split('@')[0].ToLowerInvariant()}@{rcpt.Split('@')[1]}>\r\nCc: {rcpt}\r\nBcc: {rcpt}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file, "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.ErrorLines.Count(l => l.StartsWith("C: RCPT TO:", StringComparison.Ordinal)).Should().Be(1);
        run.OutputLines.Count(l => l.TrimStart().StartsWith("to <", StringComparison.Ordinal)).Should().Be(1);
    }

    [Fact]
    public async Task Standard_input_dash_with_a_header_reaches_Postfix_with_the_header_in_front()
    {
        var rcpt = Servers.Unique("stdin");
        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: stdin\r\n\r\nfrom a pipe\r\n";

        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Postfix), "--header", "X-Test: 1", "-"], Encoding.ASCII.GetBytes(content));

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(rcpt)).Single();
        Encoding.ASCII.GetString(Servers.AsSent(stored)).Should().Be("X-Test: 1\r\n" + content);
    }

    [Fact]
    public async Task Standard_input_and_a_file_go_in_the_order_given()
    {
        var rcpt = Servers.Unique("order");
        using var files = new Files();
        var file = files.Write("f.eml", Eml(rcpt, "file"));

        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Postfix), "-", file], Encoding.ASCII.GetBytes(Eml(rcpt, "stdin")));

        run.ExitCode.Should().Be(0, run.ToString());
        var results = run.OutputLines.Where(l => l.Contains(": accepted", StringComparison.Ordinal)).ToArray();
        results.Should().HaveCount(2);
        results[1].Should().StartWith(file);
        (await Servers.PostfixMessagesAsync(rcpt, 2)).Should().HaveCount(2);
    }

    [Fact]
    public async Task Standard_input_over_1_MiB_is_spooled_in_TMPDIR_delivered_whole_and_its_temporary_file_deleted()
    {
        var rcpt = Servers.Unique("spool");
        using var tmp = new Files();
        var body = new StringBuilder();
        for (var i = 0; body.Length < 2_500_000; i++)
        {
            body.Append(i % 50 == 0 ? ".dotted line " : "line ").Append(i).Append("\r\n");
        }

        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: spool\r\n\r\n{body}";

        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Postfix), "-"], Encoding.ASCII.GetBytes(content), new Dictionary<string, string?> { ["TMPDIR"] = tmp.Path });

        run.ExitCode.Should().Be(0, run.ToString());
        Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Equal(Encoding.ASCII.GetBytes(content));
        Directory.EnumerateFileSystemEntries(tmp.Path).Should().BeEmpty("the temporary file is deleted at the end");
    }

    [Fact]
    public async Task Empty_standard_input_is_not_sent_and_exits_1()
    {
        var run = await Tool.RunAsync(["send", "-s", Servers.At(Servers.Postfix), "-"], []);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain("not sent (exit 1)");
    }

    [Fact]
    public async Task A_header_To_on_a_file_without_recipients_makes_the_recipient()
    {
        var rcpt = Servers.Unique("hdr");
        using var files = new Files();
        var content = "From: a@example.test\r\nSubject: no To\r\n\r\nx\r\n";
        var file = files.Write("h.eml", content);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--header", $"To: {rcpt}", file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = (await Servers.PostfixMessagesAsync(rcpt)).Single();
        Encoding.ASCII.GetString(Servers.AsSent(stored)).Should().Be($"To: {rcpt}\r\n" + content);
    }

    [Fact]
    public async Task A_non_ASCII_header_on_a_file_is_RFC2047_encoded()
    {
        var rcpt = Servers.Unique("hdr8");
        using var files = new Files();
        var file = files.Write("h.eml", Eml(rcpt));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--header", "X-Note: Grüße", file);

        run.ExitCode.Should().Be(0, run.ToString());
        var sent = Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single());
        sent.Should().OnlyContain(b => b < 0x80, "the header needs neither 8BITMIME nor SMTPUTF8");
        var text = Encoding.ASCII.GetString(sent);
        text.Should().StartWith("X-Note: =?").And.EndWith(Eml(rcpt));
        MimeKit.Utils.Rfc2047.DecodeText(Encoding.ASCII.GetBytes(text[8..text.IndexOf("\r\n", StringComparison.Ordinal)])).Should().Be("Grüße");
    }

    [Fact]
    public async Task A_Bcc_header_option_is_a_usage_error_and_nothing_is_sent()
    {
        var rcpt = Servers.Unique("hbcc");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--header", "Bcc: x@example.test", "--body", "x");

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty();
        run.Error.Should().Contain("Bcc");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_built_message_has_the_given_fields_and_a_UTF8_text_body()
    {
        var rcpt = Servers.Unique("built");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "Jane <jane@example.test>", "-t", rcpt, "--subject", "Report", "--body", "Hello\nWorld", "--header", "X-Mailer-Test: peer");

        run.ExitCode.Should().Be(0, run.ToString());
        var message = MimeKit.MimeMessage.Load(new MemoryStream(Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single())));
        message.Subject.Should().Be("Report");
        message.From.Mailboxes.Single().Address.Should().Be("jane@example.test");
        message.From.Mailboxes.Single().Name.Should().Be("Jane");
        message.To.Mailboxes.Single().Address.Should().Be(rcpt);
        message.Headers["X-Mailer-Test"].Should().Be("peer");
        message.MessageId.Should().NotBeNullOrEmpty();
        message.Date.Should().BeAfter(DateTimeOffset.UtcNow.AddHours(-1));
        var body = (MimeKit.TextPart)message.Body!;
        body.ContentType.MimeType.Should().Be("text/plain");
        body.ContentType.Charset.Should().BeEquivalentTo("utf-8");
        body.Text.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n').Should().Be("Hello\nWorld");
    }

    [Fact]
    public async Task A_header_option_replaces_the_built_Subject_rather_than_adding_a_second()
    {
        var rcpt = Servers.Unique("repl");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--subject", "old", "--header", "Subject: new", "--body", "x");

        run.ExitCode.Should().Be(0, run.ToString());
        var text = Encoding.UTF8.GetString(Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single()));
        text.Split("\r\n").Count(l => l.StartsWith("Subject:", StringComparison.OrdinalIgnoreCase)).Should().Be(1);
        text.Should().Contain("Subject: new\r\n");
    }

    [Fact]
    public async Task Content_type_html_header_makes_the_built_text_html()
    {
        var rcpt = Servers.Unique("html");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--header", "Content-Type: text/html", "--body", "<p>hi</p>");

        run.ExitCode.Should().Be(0, run.ToString());
        var message = MimeKit.MimeMessage.Load(new MemoryStream(Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single())));
        message.Body!.ContentType.MimeType.Should().Be("text/html");
        message.HtmlBody.Should().Contain("<p>hi</p>");
    }

    [Fact]
    public async Task Attachments_arrive_whole_base64_as_attachments_after_the_text()
    {
        var rcpt = Servers.Unique("attach");
        using var files = new Files();
        var binary = new byte[70_000];
        new Random(19).NextBytes(binary);
        var pdf = files.Write("report.pdf", binary);
        var txt = files.Write("notes.txt", "plain notes\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--subject", "report", "--body", "see attached", "--attach", pdf, "--attach", txt);

        run.ExitCode.Should().Be(0, run.ToString());
        var sent = Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single());
        sent.Should().OnlyContain(b => b < 0x80, "attachments are base64");
        var message = MimeKit.MimeMessage.Load(new MemoryStream(sent));
        var mixed = message.Body.Should().BeOfType<MimeKit.Multipart>().Subject;
        mixed.ContentType.MimeType.Should().Be("multipart/mixed");
        mixed[0].Should().BeOfType<MimeKit.TextPart>().Which.Text.Should().Contain("see attached");
        var parts = message.Attachments.OfType<MimeKit.MimePart>().ToArray();
        parts.Select(p => p.FileName).Should().Equal("report.pdf", "notes.txt");
        parts[0].ContentType.MimeType.Should().Be("application/pdf");
        parts[0].ContentTransferEncoding.Should().Be(MimeKit.ContentEncoding.Base64);
        parts[0].ContentDisposition!.Disposition.Should().Be("attachment");
        using var decoded = new MemoryStream();
        parts[0].Content!.DecodeTo(decoded);
        decoded.ToArray().Should().Equal(binary);
    }

    [Fact]
    public async Task Attach_with_a_file_argument_is_a_usage_error()
    {
        using var files = new Files();
        var file = files.Write("m.eml", Eml("x@example.test"));
        var pdf = files.Write("a.pdf", "x");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--attach", pdf, file);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().BeEmpty();
        run.Error.Should().Contain("--attach");
    }

    [Fact]
    public async Task A_missing_attachment_is_named_and_nothing_is_sent()
    {
        var rcpt = Servers.Unique("noattach");
        using var files = new Files();
        var missing = Path.Combine(files.Path, "gone.pdf");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--attach", missing);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Error.Should().Contain("gone.pdf");
        run.Error.Should().NotContain("   at ");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_body_line_longer_than_998_octets_is_encoded_so_that_a_strict_server_takes_it()
    {
        // aiosmtpd answers 500 to a line over 1000 octets on the wire: a built message must never have one.
        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Aiosmtpd), "-f", "a@example.test", "-t", Servers.Unique("long"), "--body", new string('a', 3000));

        run.ExitCode.Should().Be(0, run.ToString());
    }

    [Fact]
    public async Task A_file_header_line_over_998_octets_goes_as_it_is_and_a_strict_server_refuses_it_with_exit_6()
    {
        var rcpt = Servers.Unique("longhdr");
        using var files = new Files();
        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nX-Long: {new string('a', 1200)}\r\nSubject: long\r\n\r\nx\r\n";
        var file = files.Write("long.eml", content);

        var postfix = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);
        var aiosmtpd = await Tool.RunAsync("send", "-s", Servers.At(Servers.Aiosmtpd), file);

        postfix.ExitCode.Should().Be(0, postfix.ToString());
        Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Equal(Encoding.ASCII.GetBytes(content), "files are sent unchanged");
        aiosmtpd.ExitCode.Should().Be(6, aiosmtpd.ToString());
        aiosmtpd.Output.Should().Contain("refused (exit 6)").And.Contain("500");
    }

    [Fact]
    public async Task A_file_with_a_raw_UTF8_subject_is_stored_byte_for_byte()
    {
        var rcpt = Servers.Unique("utf8subj");
        using var files = new Files();
        var content = $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: Grüße aus Köln\r\n\r\nÄÖÜ body\r\n";
        var file = files.Write("u.eml", content);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        Servers.AsSent((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Equal(Encoding.UTF8.GetBytes(content));
    }

    [Fact]
    public async Task An_8bit_file_to_a_server_without_8BITMIME_is_not_sent_exit_6()
    {
        var rcpt = Servers.Unique("no8bit");
        using var files = new Files();
        var file = files.Write("8.eml", $"From: a@example.test\r\nTo: {rcpt}\r\nSubject: x\r\n\r\nÄÖÜ\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNo8BitMime), file);

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("not sent (exit 6)").And.Contain("8BITMIME");
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_UTF8_address_to_a_server_without_SMTPUTF8_is_a_typed_error_and_nothing_is_sent()
    {
        var local = "jürgen-" + Guid.NewGuid().ToString("N");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), "-f", "a@example.test", "-t", local + "@example.test", "--body", "x", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain("not sent (exit 6)").And.Contain("SMTPUTF8");
        run.Error.Should().NotContain("C: MAIL FROM", "nothing of the transaction is sent");
        Directory.Exists(Path.Combine(Servers.Maildir, local + "@example.test")).Should().BeFalse();
    }

    [Fact]
    public async Task A_UTF8_address_to_Postfix_with_SMTPUTF8_is_delivered_to_that_mailbox()
    {
        var rcpt = "jürgen-" + Guid.NewGuid().ToString("N") + "@example.test";

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", rcpt, "--body", "x", "--trace", "--log-addresses");

        run.ExitCode.Should().Be(0, run.ToString());
        run.Error.Should().Contain("SMTPUTF8");
        (await Servers.PostfixMessagesAsync(rcpt)).Should().ContainSingle();
    }

    [Fact]
    public async Task A_Unicode_domain_goes_as_its_A_label_to_a_server_without_SMTPUTF8_and_as_written_to_one_with_it()
    {
        var local = "idn-" + Guid.NewGuid().ToString("N");

        var without = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), "-f", "a@example.test", "-t", local + "@bücher.example", "--body", "x", "--trace", "--log-addresses");
        var with = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "-f", "a@example.test", "-t", local + "@bücher.example", "--quit-after", "rcpt", "--trace", "--log-addresses");

        without.ExitCode.Should().Be(0, without.ToString());
        without.Error.Should().Contain($"C: RCPT TO:<{local}@xn--bcher-kva.example>");
        without.ErrorLines.Single(l => l.StartsWith("C: MAIL FROM:", StringComparison.Ordinal)).Should().NotContain("SMTPUTF8");
        (await Servers.PostfixMessagesAsync(local + "@xn--bcher-kva.example")).Should().ContainSingle();
        with.ExitCode.Should().Be(0, with.ToString());
        with.Error.Should().Contain($"C: RCPT TO:<{local}@bücher.example>");
        with.ErrorLines.Single(l => l.StartsWith("C: MAIL FROM:", StringComparison.Ordinal)).Should().EndWith("SMTPUTF8");
    }

    [Fact]
    public async Task In_a_batch_to_a_server_without_SMTPUTF8_only_the_message_with_a_UTF8_recipient_is_held_back()
    {
        var rcpt = Servers.Unique("mixutf8");
        using var files = new Files();
        var one = files.Write("1.eml", Eml(rcpt, "one"));
        var two = files.Write("2.eml", $"From: a@example.test\r\nTo: {rcpt}, jü-{rcpt}\r\nSubject: two\r\n\r\nx\r\n");
        var three = files.Write("3.eml", Eml(rcpt, "three"));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), one, two, three);

        run.ExitCode.Should().Be(6, run.ToString());
        run.Output.Should().Contain($"{two}: not sent (exit 6)").And.Contain($"{one}: accepted (exit 0)").And.Contain($"{three}: accepted (exit 0)");
        var stored = await Servers.PostfixMessagesAsync(rcpt, 2);
        stored.Select(b => Encoding.ASCII.GetString(b)).Should().NotContain(t => t.Contains("Subject: two"), "the held-back message reaches none of its recipients");
    }

    [Fact]
    public async Task Smtputf8_option_to_a_server_without_it_sends_nothing()
    {
        var rcpt = Servers.Unique("forced");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.PostfixNoSmtpUtf8), "-f", "a@example.test", "-t", rcpt, "--smtputf8", "--body", "x");

        run.ExitCode.Should().Be(6, run.ToString());
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Fact]
    public async Task A_file_whose_To_field_cannot_be_parsed_is_not_sent_naming_the_field()
    {
        var good = Servers.Unique("parsegood");
        using var files = new Files();
        var bad = files.Write("bad.eml", $"From: a@example.test\r\nTo: bob@, {good}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), bad);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain("not sent (exit 1)").And.Contain("To");
        Servers.PostfixCount(good).Should().Be(0);
    }

    [Fact]
    public async Task A_file_without_any_recipient_field_asks_for_to()
    {
        using var files = new Files();
        var file = files.Write("none.eml", "From: a@example.test\r\nSubject: nobody\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain("not sent (exit 1)").And.Contain("--to");
    }

    [Fact]
    public async Task A_resent_message_goes_to_the_Resent_recipients_only()
    {
        var original = Servers.Unique("orig");
        var resent = Servers.Unique("resent");
        using var files = new Files();
        var file = files.Write("r.eml", $"Resent-From: forwarder@example.test\r\nResent-To: {resent}\r\nFrom: a@example.test\r\nTo: {original}\r\n\r\nx\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(0, run.ToString());
        Servers.ReturnPath((await Servers.PostfixMessagesAsync(resent)).Single()).Should().Be("forwarder@example.test");
        Servers.PostfixCount(original).Should().Be(0);
    }

    [Fact]
    public async Task A_file_starting_with_an_mbox_From_line_is_not_sent()
    {
        var rcpt = Servers.Unique("mbox");
        using var files = new Files();
        var file = files.Write("m.eml", "From someone@example.test Mon Dec  7 10:00:00 2026\r\n" + Eml(rcpt));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), file);

        run.ExitCode.Should().Be(1, run.ToString());
        Servers.PostfixCount(rcpt).Should().Be(0);
    }

    [Theory]
    [InlineData("\uFEFF")]
    [InlineData(" continued: line\r\n")]
    [InlineData(">From someone@example.test\r\n")]
    [InlineData("Dear Bob,\r\n")]
    public async Task A_file_whose_first_line_is_no_header_field_is_not_sent_and_the_next_one_goes(string start)
    {
        var rcpt = Servers.Unique("firstline");
        using var files = new Files();
        var bad = files.Write("bad.eml", start + Eml(rcpt, "bad"));
        var good = files.Write("good.eml", Eml(rcpt, "good"));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), bad, good);

        run.ExitCode.Should().Be(1, run.ToString());
        run.Output.Should().Contain($"{bad}: not sent (exit 1)").And.Contain($"{good}: accepted (exit 0)");
        Encoding.ASCII.GetString((await Servers.PostfixMessagesAsync(rcpt)).Single()).Should().Contain("Subject: good");
    }

    [Fact]
    public async Task A_batch_to_Exim_is_stored_with_each_message_once()
    {
        var rcpt = Servers.Unique("exim");
        using var files = new Files();
        var a = files.Write("a.eml", Eml(rcpt, "exim-a"));
        var b = files.Write("b.eml", Eml(rcpt, "exim-b"));

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Exim), a, b);

        run.ExitCode.Should().Be(0, run.ToString());
        var deadline = DateTime.UtcNow.AddSeconds(30);
        string[] copies;
        do
        {
            copies = [.. Directory.GetFiles(Path.Combine(Servers.EximMaildir, "new")).Select(File.ReadAllText).Where(t => t.Contains("Envelope-to: " + rcpt, StringComparison.Ordinal))];
            if (copies.Length >= 2 || DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(50);
        }
        while (true);
        copies.Should().HaveCount(2);
        copies.Should().ContainSingle(c => c.EndsWith(Eml(rcpt, "exim-a"), StringComparison.Ordinal));
        copies.Should().ContainSingle(c => c.EndsWith(Eml(rcpt, "exim-b"), StringComparison.Ordinal));
    }

    [Fact]
    public async Task Aiosmtpd_stores_the_exact_bytes_sent()
    {
        var rcpt = Servers.Unique("aio");
        var marker = Guid.NewGuid().ToString("N");
        using var files = new Files();
        var content = Eml(rcpt, marker, "a\r\n.b\r\n");
        var file = files.Write("a.eml", content);

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Aiosmtpd), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = Directory.GetFiles(Servers.AiosmtpdMessages, "*.eml").Select(File.ReadAllBytes)
            .Where(b => Encoding.ASCII.GetString(b).Contains(marker, StringComparison.Ordinal)).ToArray();
        stored.Should().ContainSingle().Which.Should().Equal(Encoding.ASCII.GetBytes(content));
    }

    [Fact]
    public async Task A_pipelined_batch_with_refusals_in_the_middle_delivers_each_good_message_exactly_once()
    {
        var rcpt = Servers.Unique("batch60");
        using var files = new Files();
        var dir = files.Sub("batch");
        for (var i = 0; i < 60; i++)
        {
            var to = i % 10 == 3 ? "unknown-batch@example.test" : i % 10 == 7 ? "tempfail@example.test" : rcpt;
            var from = i % 15 == 5 ? "eod-reject@example.test" : "a@example.test";
            files.Write($"batch/{i:D2}.eml", $"From: {from}\r\nTo: {to}\r\nSubject: n{i:D2}\r\n\r\nbody {i}\r\n");
        }

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Postfix), "--json", dir);

        var outcomes = run.Json[..60].Select(j => j.GetProperty("exitCode").GetInt32()).ToArray();
        var expected = Enumerable.Range(0, 60).Select(i => i % 10 == 3 || i % 10 == 7 ? 5 : i % 15 == 5 ? 6 : 0).ToArray();
        outcomes.Should().Equal(expected);
        run.ExitCode.Should().Be(6, run.ToString());
        var good = expected.Count(c => c == 0);
        var stored = await Servers.PostfixMessagesAsync(rcpt, good);
        stored.Select(b => System.Text.RegularExpressions.Regex.Match(Encoding.ASCII.GetString(b), "Subject: (n\\d+)").Groups[1].Value)
            .Should().BeEquivalentTo(Enumerable.Range(0, 60).Where(i => expected[i] == 0).Select(i => $"n{i:D2}"), "each accepted message once, none of the refused");
    }

    [Fact]
    public async Task Bare_CR_and_bare_LF_become_CRLF_on_the_wire_as_aiosmtpd_stores_it()
    {
        var marker = Guid.NewGuid().ToString("N");
        using var files = new Files();
        var file = files.Write("cr.eml", $"From: a@example.test\r\nTo: b@example.test\r\nSubject: {marker}\r\n\r\na\rb\nc\r\n");

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Aiosmtpd), file);

        run.ExitCode.Should().Be(0, run.ToString());
        var stored = Directory.GetFiles(Servers.AiosmtpdMessages, "*.eml").Select(File.ReadAllText).Single(t => t.Contains(marker, StringComparison.Ordinal));
        stored.Should().Be($"From: a@example.test\r\nTo: b@example.test\r\nSubject: {marker}\r\n\r\na\r\nb\r\nc\r\n");
    }

    [Fact]
    public async Task Smtp_sink_without_AUTH_or_TLS_takes_a_batch_of_twenty()
    {
        using var files = new Files();
        var dir = files.Sub("batch");
        for (var i = 0; i < 20; i++)
        {
            files.Write($"batch/{i:D2}.eml", Eml("sink@example.test", $"n{i}"));
        }

        var run = await Tool.RunAsync("send", "-s", Servers.At(Servers.Sink), "--json", dir);

        run.ExitCode.Should().Be(0, run.ToString());
        run.Json.Should().HaveCount(21);
        run.Json[..20].Select(j => j.GetProperty("index").GetInt32()).Should().Equal(Enumerable.Range(1, 20));
        run.Summary.GetProperty("accepted").GetInt32().Should().Be(20);
    }
}
