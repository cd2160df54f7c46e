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

        act.Should().Throw<ArgumentException>().WithMessage("The message has no To, Cc or Bcc address that could be read: the field To: 'bob@' cannot be read as an address list*").And.Message.Should().NotContain("has no To, Cc or Bcc address.");
    }

    [Fact]
    public void A_From_field_without_a_readable_address_is_quoted_not_called_missing()
    {
        var message = BrkMime2ProbeTests.Parse("From: Alice <alice@>\r\nTo: bob@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        var act = () => message.GetSmtpEnvelope();

        act.Should().Throw<ArgumentException>().WithMessage("The message has no Sender or From address that could be read, so there is no reverse path: the field From: 'Alice <alice@>' cannot be read as an address list*");
    }

    [Fact]
    public void Without_the_fields_the_messages_stay_as_they_were()
    {
        var noRecipient = BrkMime2ProbeTests.Parse("From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n");
        var noSender = BrkMime2ProbeTests.Parse("To: b@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        noRecipient.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("The message has no To, Cc or Bcc address.*");
        noSender.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("The message has neither a Sender nor a From address: there is no reverse path.*");
    }

    /// <summary>
    /// Session 20 (new user): <c>To: bob@, carol@example.test</c> as the only recipient field was reported as "the field
    /// To: 'bob@, carol@example.test' holds none", which the quoted carol@example.test contradicts: MimeKit cannot parse
    /// the list at all. The message now says so, as it does when other fields hold recipients.
    /// </summary>
    [Theory]
    [InlineData("From: a@example.test\r\nTo: bob@, carol@example.test\r\n", "The message has no To, Cc or Bcc address that could be read: the field To: 'bob@, carol@example.test' cannot be read as an address list*")]
    [InlineData("From: bob@, a@example.test\r\nTo: c@example.test\r\n", "The message has no Sender or From address that could be read, so there is no reverse path: the field From: 'bob@, a@example.test' cannot be read as an address list*")]
    public void A_field_MimeKit_cannot_parse_is_not_said_to_hold_no_address(string fields, string expected)
    {
        var message = BrkMime2ProbeTests.Parse(fields + "Subject: x\r\n\r\nbody\r\n");

        var act = () => message.GetSmtpEnvelope();

        act.Should().Throw<ArgumentException>().WithMessage(expected).And.Message.Should().NotContain("holds none");
    }
}
