using System.Text;
using MimeKit;

namespace MailPipe.MimeKit.Tests.Peer;

/// <summary>
/// Peer acceptance of the README's envelope rules (<c>GetSmtpEnvelope</c>), read from parsed messages: the cases the
/// existing tests do not name (an empty or null Sender, a group before the author, Resent-Sender over Resent-From, a
/// resent block of Resent-Bcc alone, a mailbox repeated in another case or across To/Cc/Bcc).
/// </summary>
public sealed class PeerMimeEnvelopeTests
{
    private static MimeMessage Parse(string header) =>
        MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(header.ReplaceLineEndings("\r\n") + "\r\nbody\r\n")));

    private static string[] Recipients(SmtpEnvelope envelope) => envelope.Recipients.Select(r => r.Address).ToArray();

    [Fact]
    public void A_null_reverse_path_Sender_gives_none_and_From_counts()
    {
        var envelope = Parse("Sender: <>\nFrom: Alice <alice@example.test>\nTo: bob@example.test\n").GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("alice@example.test");
    }

    [Fact]
    public void An_empty_group_before_the_author_in_From_is_skipped()
    {
        var envelope = Parse("From: Nobody: ;, Team: carol@example.test, dave@example.test;, alice@example.test\nTo: bob@example.test\n").GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("carol@example.test", "groups are flattened: the first mailbox with an address");
    }

    [Fact]
    public void Resent_Sender_wins_over_Resent_From()
    {
        var envelope = Parse("Resent-From: fwd@example.test\nResent-Sender: agent@example.test\nResent-To: new@example.test\nFrom: alice@example.test\nTo: bob@example.test\n").GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("agent@example.test");
        Recipients(envelope).Should().Equal("new@example.test");
    }

    [Fact]
    public void A_resent_block_of_Resent_Bcc_alone_goes_to_its_Resent_Bcc_and_not_to_To()
    {
        var envelope = Parse("Resent-From: fwd@example.test\nResent-Bcc: hidden@example.test\nFrom: alice@example.test\nTo: bob@example.test\n").GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("fwd@example.test");
        Recipients(envelope).Should().Equal("hidden@example.test");
    }

    [Fact]
    public void A_resent_block_with_recipients_but_no_Resent_From_or_Sender_is_an_ArgumentException_not_the_original_recipients()
    {
        var message = Parse("Resent-Cc: again@example.test\nFrom: alice@example.test\nTo: bob@example.test\n");

        var act = () => message.GetSmtpEnvelope();

        act.Should().Throw<ArgumentException>();
    }

    [Fact]
    public void To_Cc_and_Bcc_go_in_header_order_each_once_across_the_fields_and_in_another_case()
    {
        var envelope = Parse("From: alice@example.test\nBcc: zed@example.test, bob@example.test\nTo: bob@example.test, carol@example.test\nCc: CAROL@EXAMPLE.TEST, dave@example.test\n").GetSmtpEnvelope();

        Recipients(envelope).Should().HaveCount(4).And.Contain(["zed@example.test", "dave@example.test"]);
        Recipients(envelope).Select(a => a.ToLowerInvariant()).Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void The_envelope_is_the_same_from_GetSmtpEnvelope_and_from_ToSmtpMessage()
    {
        var message = Parse("From: alice@example.test\nTo: bob@example.test\nCc: Team: carol@example.test;\nBcc: dave@example.test\n");

        message.ToSmtpMessage().Envelope.Should().Be(message.GetSmtpEnvelope());
        Recipients(message.GetSmtpEnvelope()).Should().Equal("bob@example.test", "carol@example.test", "dave@example.test");
    }

    [Fact]
    public void A_message_without_From_or_Sender_is_an_ArgumentException()
    {
        var message = Parse("To: bob@example.test\n");

        var act = () => message.ToSmtpMessage();

        act.Should().Throw<ArgumentException>();
    }
}
