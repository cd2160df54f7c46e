using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>Issue #14: the envelope alone, from the headers.</summary>
public class MimeEnvelopeTests
{
    [Fact]
    public void Sender_wins_over_From_and_To_Cc_Bcc_are_the_recipients_each_once_groups_flattened()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.Sender = MailboxAddress.Parse("secretary@example.test");
        message.To.Add(MailboxAddress.Parse("a@example.test"));
        message.To.Add(new GroupAddress("team", [MailboxAddress.Parse("b@example.test"), MailboxAddress.Parse("A@example.test")]));
        message.Cc.Add(MailboxAddress.Parse("c@example.test"));
        message.Bcc.Add(MailboxAddress.Parse("d@example.test"));

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("secretary@example.test");
        envelope.Recipients.Select(r => r.Address).Should().Equal("a@example.test", "b@example.test", "c@example.test", "d@example.test");
        envelope.Body.Should().Be(SmtpBodyType.Auto);
    }

    [Fact]
    public void Without_Sender_the_first_From_is_the_reverse_path()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("first@example.test"));
        message.From.Add(MailboxAddress.Parse("second@example.test"));
        message.To.Add(MailboxAddress.Parse("a@example.test"));

        message.GetSmtpEnvelope().ReversePath.Should().Be("first@example.test");
    }

    [Fact]
    public void A_resent_message_goes_from_Resent_Sender_or_Resent_From_to_the_Resent_recipients()
    {
        var message = MimeTestMessages.Resent("original@example.test", "new@example.test", "hidden@example.test");

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("forwarder@example.test");
        envelope.Recipients.Select(r => r.Address).Should().Equal("new@example.test", "hidden@example.test");

        message.ResentSender = MailboxAddress.Parse("resender@example.test");
        message.GetSmtpEnvelope().ReversePath.Should().Be("resender@example.test");
    }

    [Fact]
    public void A_message_with_Resent_To_but_no_Resent_From_is_not_sent_to_its_original_recipients_again()
    {
        // RFC 5322 §3.6.6: Resent-From is required in a resent block. Without it the message still says that it is
        // being resent, to new@; its original To, who had it already, must not get it again (it went to original@).
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.To.Add(MailboxAddress.Parse("original@example.test"));
        message.ResentTo.Add(MailboxAddress.Parse("new@example.test"));
        message.ResentDate = DateTimeOffset.UnixEpoch;
        message.Body = new TextPart("plain") { Text = "x" };

        message.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("*Resent-*Resent-From*");

        message.ResentFrom.Add(MailboxAddress.Parse("forwarder@example.test"));
        message.GetSmtpEnvelope().Recipients.Select(r => r.Address).Should().Equal("new@example.test");
    }

    [Fact]
    public void A_quoted_local_part_stays_quoted_and_a_header_address_without_domain_is_an_ArgumentException()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("\"john smith\"@example.test"));
        message.To.Add(MailboxAddress.Parse("\"jane doe\"@example.test"));

        var envelope = message.GetSmtpEnvelope();

        envelope.ReversePath.Should().Be("\"john smith\"@example.test");
        envelope.Recipients.Single().Address.Should().Be("\"jane doe\"@example.test");

        // "To: jdoe" parses as a mailbox without a domain: sent as it is, a server could complete it with its own domain.
        message.To.Clear();
        message.To.Add(new MailboxAddress(null, "jdoe"));
        message.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("*'jdoe' is not a forward-path*");
    }

    [Fact]
    public void No_sender_or_no_recipient_is_an_ArgumentException()
    {
        var noSender = new MimeMessage();
        noSender.To.Add(MailboxAddress.Parse("a@example.test"));
        var noRecipient = new MimeMessage();
        noRecipient.From.Add(MailboxAddress.Parse("a@example.test"));

        noSender.Invoking(m => m.GetSmtpEnvelope()).Should().Throw<ArgumentException>().WithMessage("*neither a Sender nor a From*");
        noRecipient.Invoking(m => m.ToSmtpMessage()).Should().Throw<ArgumentException>().WithMessage("*no To, Cc or Bcc*");
    }

    [Theory]
    [InlineData("user@bücher.example", "user@xn--bcher-kva.example")]
    [InlineData("user@example.test", "user@example.test")]
    [InlineData("jürgen@münchen.example", "jürgen@xn--mnchen-3ya.example")]
    public void Domains_are_converted_to_A_labels(string address, string expected) => MimeEnvelope.ALabel(address).Should().Be(expected);

    [Theory]
    [InlineData("7bit", "SevenBit")]
    [InlineData("8bit", "EightBit")]
    [InlineData("binary", "Binary")]
    [InlineData("default-text", "EightBit")]
    [InlineData("default-octets", "Binary")]
    [InlineData("default-ascii", "SevenBit")]
    [InlineData("default-bare-cr", "Binary")]
    [InlineData("embedded-8bit", "EightBit")]
    public void The_body_need_is_read_from_the_declared_encodings(string shape, string expected)
    {
        var message = new MimeMessage();
        MimeEntity Part(ContentEncoding encoding) => new TextPart("plain") { Text = "x", ContentTransferEncoding = encoding };
        message.Body = shape switch
        {
            "7bit" => new Multipart("mixed") { Part(ContentEncoding.QuotedPrintable), Part(ContentEncoding.Base64), Part(ContentEncoding.SevenBit) },
            "8bit" => new Multipart("mixed") { Part(ContentEncoding.Base64), Part(ContentEncoding.EightBit) },
            "binary" => new Multipart("mixed") { Part(ContentEncoding.EightBit), Part(ContentEncoding.Binary) },
            "default-text" => new TextPart("plain") { Text = "ascii only, but nothing declared" },
            "default-octets" => new MimePart("application", "octet-stream") { Content = new MimeContent(new MemoryStream([1, 0, 0xFF])) },
            "default-ascii" => new MimePart("application", "json") { Content = new MimeContent(new MemoryStream("{\"a\": 1}\r\n{\"b\": 2}\n"u8.ToArray())) },
            "default-bare-cr" => new MimePart("application", "json") { Content = new MimeContent(new MemoryStream("{\"a\": 1}\r{\"b\": 2}\r\n"u8.ToArray())) },
            _ => new Multipart("mixed") { Part(ContentEncoding.SevenBit), new MessagePart { Message = new MimeMessage { Body = Part(ContentEncoding.EightBit) } } },
        };

        MimeBody.Need(message).ToString().Should().Be(expected);
    }
}
