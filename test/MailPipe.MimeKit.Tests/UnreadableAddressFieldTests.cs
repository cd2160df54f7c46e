using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Session 13: a field MimeKit cannot read an address from (<c>To: bob@</c>, a domain left out) was reported as
/// missing: "The message has no To, Cc or Bcc address", to someone looking at a To field. The message now quotes the
/// field it could not read.
/// </summary>
public class UnreadableAddressFieldTests
{
    [Fact]
    public void A_To_field_without_a_readable_address_is_quoted_not_called_missing()
    {
        var message = BrkMime2ProbeTests.Parse("From: a@example.test\r\nTo: bob@\r\nSubject: x\r\n\r\nbody\r\n");

        var act = () => message.GetSmtpEnvelope();

        act.Should().Throw<ArgumentException>().WithMessage("The message has no To, Cc or Bcc address that could be read: the field To: 'bob@' holds none*").And.Message.Should().NotContain("has no To, Cc or Bcc address.");
    }

    [Fact]
    public void A_From_field_without_a_readable_address_is_quoted_not_called_missing()
    {
        var message = BrkMime2ProbeTests.Parse("From: Alice <alice@>\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        var act = () => message.GetSmtpEnvelope();

        act.Should().Throw<ArgumentException>().WithMessage("The message has no Sender or From address that could be read, so there is no reverse path: the field From: 'Alice <alice@>' holds none*");
    }

    [Fact]
    public void Without_the_fields_the_messages_stay_as_they_were()
    {
        var noRecipient = BrkMime2ProbeTests.Parse("From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n");
        var noSender = BrkMime2ProbeTests.Parse("To: b@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        noRecipient.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("The message has no To, Cc or Bcc address.*");
        noSender.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("The message has neither a Sender nor a From address: there is no reverse path.*");
    }
}
