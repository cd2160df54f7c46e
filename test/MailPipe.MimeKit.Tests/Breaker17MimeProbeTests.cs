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
}
