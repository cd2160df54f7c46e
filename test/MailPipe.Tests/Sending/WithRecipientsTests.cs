using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// <see cref="SmtpMessage.WithRecipients"/> and <see cref="SmtpSendResult.WithAttempts"/> (issue #12): the copy a retry
/// sends to the recipients still to do, and the attempt count of a merged result.
/// </summary>
public class WithRecipientsTests
{
    [Fact]
    public void The_copy_keeps_the_reverse_path_the_parameters_and_the_content_and_only_the_recipients_given()
    {
        var envelope = new SmtpEnvelope(Sender, "a@example.test", "b@example.test", "c@example.test") { EnvelopeId = "id-1", Size = 21, RequireTls = true };
        var message = SmtpMessage.FromBytes(envelope, Encoding.ASCII.GetBytes(SmallText));

        var copy = message.WithRecipients([new SmtpRecipient("a@example.test"), new SmtpRecipient("c@example.test")]);

        copy.Envelope.Recipients.Select(r => r.Address).Should().Equal("a@example.test", "c@example.test");
        copy.Envelope.ReversePath.Should().Be(Sender);
        copy.Envelope.EnvelopeId.Should().Be("id-1");
        copy.Envelope.Size.Should().Be(21);
        copy.Envelope.RequireTls.Should().BeTrue();
        copy.ContentLength.Should().Be(SmallText.Length);
        message.Envelope.Recipients.Should().HaveCount(3, "the original is not changed");
    }

    [Fact]
    public void Recipients_that_are_not_a_subsequence_or_none_are_refused()
    {
        var message = SmtpMessage.FromBytes(Envelope("a@example.test", "b@example.test"), Encoding.ASCII.GetBytes(SmallText));

        FluentActions.Invoking(() => message.WithRecipients([new SmtpRecipient("b@example.test"), new SmtpRecipient("a@example.test")])).Should().Throw<ArgumentException>().WithParameterName("recipients");
        FluentActions.Invoking(() => message.WithRecipients([new SmtpRecipient("x@example.test")])).Should().Throw<ArgumentException>().WithParameterName("recipients");
        FluentActions.Invoking(() => message.WithRecipients([])).Should().Throw<ArgumentException>().WithParameterName("recipients");
        FluentActions.Invoking(() => message.WithRecipients(null!)).Should().Throw<ArgumentNullException>();
    }

    [Fact]
    public async Task A_ForConnection_copy_sends_the_chosen_messages_recipients_at_the_same_positions()
    {
        // The selector makes the message for the connection (here: other spellings of the addresses, as an adapter
        // writing A-labels would); the copy for the second recipient must send the chosen message's second recipient.
        var chosen = SmtpMessage.FromBytes(new SmtpEnvelope(Sender, "one@xn--bcher-kva.example", "two@xn--bcher-kva.example"), Encoding.ASCII.GetBytes(SmallText));
        var message = SmtpMessage.ForConnection(Envelope("one@bücher.example", "two@bücher.example"), _ => chosen);
        var copy = message.WithRecipients([new SmtpRecipient("two@bücher.example")]);
        var script = Script(Ehlo(), ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<two@xn--bcher-kva.example>", "S: 250 ok", "C: DATA", "S: 354 go", .. DataLines(SmallText, firstAfterReply: false), "S: 250 queued"]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(copy).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Recipients.Should().ContainSingle();
    }

    [Fact]
    public void WithAttempts_copies_the_result_with_the_count()
    {
        var result = SmtpSendResult.Refused(Envelope("a@example.test"), new SmtpReply(451, "4.3.0 later"));

        var merged = result.WithAttempts(3);

        result.Attempts.Should().Be(1);
        merged.Attempts.Should().Be(3);
        merged.Outcome.Should().Be(result.Outcome);
        merged.FinalReply.Should().BeSameAs(result.FinalReply);
        merged.Recipients.Should().BeSameAs(result.Recipients);
        FluentActions.Invoking(() => result.WithAttempts(0)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
