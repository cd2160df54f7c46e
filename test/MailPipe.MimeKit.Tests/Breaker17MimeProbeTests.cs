using System.Text;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>Breaker17 probes of issue #14: envelope derivation and the data of a MimeMessage.</summary>
public class Breaker17MimeProbeTests
{
    private static MimeMessage Parse(string text) => MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(text.ReplaceLineEndings("\r\n"))));

    [Fact]
    public void A_message_resent_twice_goes_from_and_to_the_newest_resent_block_only_never_again_to_the_older_blocks_recipients()
    {
        // RFC 5322 §3.6.6: each resending prepends its own block; the newest is on top. The older block's recipients
        // already had the message when it was resent before.
        // As it arrives: each resending's block under the trace field of its hop (the older block's Resent-Sender would
        // otherwise be indistinguishable from a field of the newer block).
        var message = Parse("""
            Received: from relay2.example.test by mx.example.test; Sun, 6 Dec 2026 10:00:01 +0000
            Resent-From: second@example.test
            Resent-Date: Sun, 6 Dec 2026 10:00:00 +0000
            Resent-To: newest@example.test
            Resent-Message-ID: <r2@example.test>
            Received: from relay1.example.test by mx.example.test; Sat, 5 Dec 2026 10:00:01 +0000
            Resent-Sender: oldsender@example.test
            Resent-From: first@example.test
            Resent-Date: Sat, 5 Dec 2026 10:00:00 +0000
            Resent-To: older@example.test
            Resent-Bcc: olderhidden@example.test
            Resent-Message-ID: <r1@example.test>
            From: author@example.test
            To: original@example.test
            Subject: twice
            Message-ID: <m@example.test>

            Hello.

            """);

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("second@example.test", "the older block's Resent-Sender is not this resending's");
        envelope.Recipients.Select(r => r.Address).Should().Equal(["newest@example.test"], "the older resent block's recipients were sent the message by the earlier resending");
    }

    [Fact]
    public void A_resent_block_built_in_code_whose_fields_MimeKit_appended_apart_is_one_block()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.To.Add(MailboxAddress.Parse("original@example.test"));
        message.ResentFrom.Add(MailboxAddress.Parse("resender@example.test"));
        message.Headers.Add("X-Mailer", "test");
        message.ResentTo.Add(MailboxAddress.Parse("new@example.test"));
        message.ResentBcc.Add(MailboxAddress.Parse("hidden@example.test"));

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("resender@example.test");
        envelope.Recipients.Select(r => r.Address).Should().Equal("new@example.test", "hidden@example.test");
    }

    [Fact]
    public void One_resent_block_with_its_Resent_To_field_twice_keeps_both()
    {
        var message = Parse("""
            Resent-From: resender@example.test
            Resent-Date: Sun, 6 Dec 2026 10:00:00 +0000
            Resent-To: one@example.test
            Resent-To: two@example.test
            From: author@example.test
            To: original@example.test
            Subject: once

            Hello.

            """);

        message.GetSmtpEnvelope().Recipients.Select(r => r.Address).Should().Equal("one@example.test", "two@example.test");
    }
}
