using System.Text;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>Breaker23 probes of issue #14: the envelope of parsed real-world headers.</summary>
public class Breaker23EnvelopeProbeTests
{
    [Fact]
    public void A_group_in_Resent_From_and_Resent_To_gives_its_first_member_as_reverse_path_and_its_members_as_recipients()
    {
        var message = Parse("Resent-From: team: lead@example.test, second@example.test;\r\nResent-To: list: a@example.test, b@example.test;, c@example.test\r\nResent-Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n"
            + "From: author@example.test\r\nTo: old@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("lead@example.test");
        envelope.Recipients.Select(r => r.Address).Should().Equal("a@example.test", "b@example.test", "c@example.test");
    }

    [Fact]
    public void An_empty_Sender_field_is_not_the_reverse_path_when_From_has_an_address()
    {
        var message = Parse("Sender: <>\r\nFrom: author@example.test\r\nTo: to@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("author@example.test");
    }

    private static MimeMessage Parse(string raw) => MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(raw)));
}
