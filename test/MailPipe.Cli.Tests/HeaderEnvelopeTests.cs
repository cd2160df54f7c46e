using System.Text;

namespace MailPipe.Cli.Tests;

public class HeaderEnvelopeTests
{
    private static HeaderSection Headers(string message) => HeaderSection.Parse(Encoding.UTF8.GetBytes(message));

    [Fact]
    public void Reads_sender_and_recipients_from_folded_lists_with_display_names_and_quoted_strings()
    {
        var headers = Headers(
            "From: \"Doe, Jane\" <jane@example.test>\r\n" +
            "To: Bob <bob@example.test>,\r\n" +
            " \"Smith, Carol (work)\" <carol@example.test>, dave@example.test\r\n" +
            "Cc: =?utf-8?q?=C3=89mile?= <emile@example.test>\r\n" +
            "\t, (a comment) erin@example.test\r\n" +
            "Bcc: frank@example.test\r\n" +
            "Subject: test\r\n" +
            "\r\n" +
            "To: not-a-header@example.test\r\n");

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.ReversePath.Should().Be("jane@example.test");
        envelope.Recipients.Should().Equal(
            "bob@example.test", "carol@example.test", "dave@example.test", "emile@example.test", "erin@example.test", "frank@example.test");
        envelope.UsedResentFields.Should().BeFalse();
    }

    [Fact]
    public void Groups_count_their_members_and_duplicates_are_sent_once()
    {
        var headers = Headers(
            "From: a@example.test\n" +
            "To: Team: x@example.test, Y <y@example.test>;, undisclosed-recipients:;\n" +
            "Cc: X@EXAMPLE.TEST\n" +
            "\n" +
            "body\n");

        EnvelopeFromHeaders.Extract(headers).Recipients.Should().Equal("x@example.test", "y@example.test");
    }

    [Fact]
    public void A_mailbox_written_quoted_and_plain_or_with_a_Unicode_and_an_A_label_domain_is_one_recipient()
    {
        // RFC 5321 §4.1.2: "bob"@ and bob@ are the same mailbox; bücher.example and xn--bcher-kva.example the same
        // domain (RFC 5890). As two RCPTs, Postfix stored two copies in the same Maildir.
        var headers = Headers(
            "From: a@example.test\r\n" +
            "To: bob@example.test, b@b\u00fccher.example\r\n" +
            "Cc: \"bob\"@example.test, \"b\\ob\"@EXAMPLE.test\r\n" +
            "Bcc: b@xn--bcher-kva.example, \"john smith\"@example.test\r\n" +
            "\r\n");

        EnvelopeFromHeaders.Extract(headers).Recipients.Should().Equal("bob@example.test", "b@b\u00fccher.example", "\"john smith\"@example.test");
    }

    [Fact]
    public void Sender_field_wins_over_From()
    {
        var headers = Headers("From: a@example.test, b@example.test\r\nSender: secretary@example.test\r\nTo: c@example.test\r\n\r\n");

        EnvelopeFromHeaders.Extract(headers).ReversePath.Should().Be("secretary@example.test");
    }

    [Fact]
    public void Resent_fields_replace_the_original_recipients()
    {
        var headers = Headers(
            "Resent-From: forwarder@example.test\r\n" +
            "Resent-To: new@example.test\r\n" +
            "Resent-Bcc: hidden@example.test\r\n" +
            "From: author@example.test\r\n" +
            "To: old@example.test\r\n" +
            "\r\n");

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.UsedResentFields.Should().BeTrue();
        envelope.ReversePath.Should().Be("forwarder@example.test");
        envelope.Recipients.Should().Equal("new@example.test", "hidden@example.test");
    }

    [Fact]
    public void A_message_resent_twice_goes_only_to_the_newest_resent_block_from_its_sender()
    {
        // RFC 5322 §3.6.6: one block of Resent-* fields per resending, the newest on top (under its trace fields).
        // The older block's recipients had the message already; its Resent-Sender is not this resending's sender.
        var headers = Headers(
            "Resent-From: second@example.test\r\n" +
            "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n" +
            "Resent-To: new@example.test\r\n" +
            "Received: from x by y; Mon, 07 Dec 2026 04:00:00 +0000\r\n" +
            "Resent-From: first@example.test\r\n" +
            "Resent-Sender: first-sender@example.test\r\n" +
            "Resent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\n" +
            "Resent-To: old@example.test\r\n" +
            "Resent-Bcc: old-hidden@example.test\r\n" +
            "From: author@example.test\r\n" +
            "To: original@example.test\r\n" +
            "\r\n");

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.UsedResentFields.Should().BeTrue();
        envelope.ReversePath.Should().Be("second@example.test");
        envelope.Recipients.Should().Equal("new@example.test");
    }

    [Fact]
    public void A_message_with_Resent_From_but_no_resent_recipient_is_not_sent_to_its_original_recipients_again()
    {
        // Resent-From says the message is being resent (RFC 5322 §3.6.6); its To had it already. No recipient then
        // (the caller says "give --to"), as MailPipe.MimeKit refuses such a MimeMessage.
        var headers = Headers(
            "Resent-From: forwarder@example.test\r\n" +
            "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n" +
            "From: author@example.test\r\n" +
            "To: original@example.test\r\n" +
            "\r\n");

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.UsedResentFields.Should().BeTrue();
        envelope.ReversePath.Should().Be("forwarder@example.test");
        envelope.Recipients.Should().BeEmpty();
    }

    [Fact]
    public void Two_resent_blocks_next_to_each_other_are_told_apart_by_a_repeated_field()
    {
        var headers = Headers(
            "Resent-Date: Mon, 07 Dec 2026 05:00:00 +0000\r\n" +
            "Resent-From: second@example.test\r\n" +
            "Resent-Cc: new@example.test\r\n" +
            "Resent-Date: Sun, 06 Dec 2026 05:00:00 +0000\r\n" +
            "Resent-From: first@example.test\r\n" +
            "Resent-To: old@example.test\r\n" +
            "From: author@example.test\r\n" +
            "To: original@example.test\r\n" +
            "\r\n");

        var envelope = EnvelopeFromHeaders.Extract(headers);

        envelope.ReversePath.Should().Be("second@example.test");
        envelope.Recipients.Should().Equal("new@example.test");
    }

    [Fact]
    public void Missing_fields_give_no_sender_and_no_recipients()
    {
        var envelope = EnvelopeFromHeaders.Extract(Headers("Subject: nothing\r\n\r\nbody\r\n"));

        envelope.ReversePath.Should().BeNull();
        envelope.Recipients.Should().BeEmpty();
    }

    [Fact]
    public void An_unparsable_address_list_is_an_error()
    {
        var act = () => EnvelopeFromHeaders.Extract(Headers("From: a@example.test\r\nTo: b@\r\n\r\n"));

        act.Should().Throw<FormatException>().WithMessage("*To*");
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\n")]
    public void Removing_Bcc_keeps_every_other_byte(string eol)
    {
        var before = $"Received: from x{eol}\tby y; Mon, 1 Jan 2024 00:00:00 +0000{eol}From: a@example.test{eol}";
        var bcc = $"Bcc: hidden@example.test,{eol}  other@example.test{eol}";
        var after = $"To: b@example.test{eol}bcc: second@example.test{eol}Subject: keep  spacing {eol}{eol}Bcc: in the body stays{eol}";
        var headers = Headers(before + bcc + after);

        var sent = Encoding.UTF8.GetString(EnvelopeFromHeaders.RemoveBlindCopies(headers)) + "Bcc: in the body stays" + eol;

        sent.Should().Be(before + $"To: b@example.test{eol}Subject: keep  spacing {eol}{eol}Bcc: in the body stays{eol}");
    }

    [Fact]
    public void Header_section_without_body_ends_at_the_end_of_the_file()
    {
        var headers = Headers("From: a@example.test\r\nTo: b@example.test");

        headers.Fields.Select(f => f.Name).Should().Equal("From", "To");
        headers.BodyOffset.Should().Be(headers.Bytes.Length);
        EnvelopeFromHeaders.Extract(headers).Recipients.Should().Equal("b@example.test");
    }

    [Fact]
    public void Reading_from_a_stream_stops_at_the_empty_line_even_across_buffers()
    {
        var longValue = new string('x', 40_000);
        var message = $"From: a@example.test\r\nX-Long: {longValue}\r\nTo: b@example.test\r\n\r\nbody\r\n";
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes(message));

        var headers = HeaderSection.Read(stream);

        headers.BodyOffset.Should().Be(message.IndexOf("body", StringComparison.Ordinal));
        headers.Fields.Select(f => f.Name).Should().Equal("From", "X-Long", "To");
    }
}
