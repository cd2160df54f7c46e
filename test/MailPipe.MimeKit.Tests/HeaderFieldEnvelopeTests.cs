using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// The envelope rules MailPipe.MimeKit shares with <c>mailpipe send</c> (HeaderFieldEnvelope), seen from a MimeMessage:
/// what the CLI's EnvelopeDifferentialTests cannot show, the messages of the ArgumentException and messages built in code.
/// </summary>
public class HeaderFieldEnvelopeTests
{
    [Fact]
    public void An_unreadable_Cc_next_to_a_readable_To_is_named_and_nothing_is_sent()
    {
        var message = BrkMime2ProbeTests.Parse("From: a@example.test\r\nTo: c@example.test\r\nCc: Bob <bob@>\r\nSubject: x\r\n\r\nbody\r\n");

        message.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>()
            .WithMessage("The message is not sent to its other recipients alone: the field Cc: 'Bob <bob@>' cannot be read as an address list*ToSmtpMessage(envelope)*");
    }

    [Fact]
    public void An_unreadable_Sender_is_named_rather_than_replaced_by_From()
    {
        var message = BrkMime2ProbeTests.Parse("Sender: s@\r\nFrom: a@example.test\r\nTo: c@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        message.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>()
            .WithMessage("The message has no Sender or From address that could be read, so there is no reverse path: the field Sender: 's@' cannot be read as an address list*");
    }

    [Fact]
    public void Recipients_built_in_code_go_in_header_order_and_a_Unicode_domain_as_MimeKit_gives_it()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("a@example.test"));
        message.Cc.Add(MailboxAddress.Parse("c@example.test"));
        message.To.Add(MailboxAddress.Parse("t@b\u00fccher.example"));
        message.To.Add(MailboxAddress.Parse("T@xn--bcher-kva.example"));

        var envelope = message.GetSmtpEnvelope();

        envelope.Recipients.Select(r => r.Address).Should().Equal("c@example.test", "t@b\u00fccher.example");
    }

    [Fact]
    public void An_empty_Resent_To_field_still_says_the_message_is_resent()
    {
        // Before, only a Resent-To with an address counted: this message went to its original To, who had it already.
        var message = BrkMime2ProbeTests.Parse("Resent-To:\r\nFrom: a@example.test\r\nTo: original@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        message.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>()
            .WithMessage("The message has Resent-* fields but neither Resent-Sender nor a Resent-From address: there is no reverse path.*");
    }
}
