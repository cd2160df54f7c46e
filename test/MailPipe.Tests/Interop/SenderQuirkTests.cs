using System.Text;
using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Interop;

/// <summary>Quirks of real servers met through the <see cref="SmtpSender"/> pool (scripted server over ConnectStream).</summary>
public sealed class SenderQuirkTests
{
    private static SmtpMessage Message(params string[] recipients) =>
        SmtpMessage.FromBytes(new SmtpEnvelope(SendScripts.Sender, recipients), Encoding.ASCII.GetBytes(SendScripts.SmallText));

    private static SmtpSender Sender(ScriptedSmtpServer server) => new(new SmtpSenderOptions
    {
        ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
        Name = "quirk",
        EhloName = "client.example.test",
        MaxConnections = 1,
    });

    [Fact]
    public async Task A_554_greeting_gets_QUIT_and_the_message_is_NotSent_as_permanent()
    {
        await using var server = ScriptedSmtpServer.Start("S: 554 5.7.1 No SMTP service here", "C: QUIT", "S: 221 bye", "CLOSE");
        await using var sender = Sender(server);

        var result = await sender.SendAsync(Message("a@example.test")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.IsTransientFailure.Should().BeFalse("554 is permanent");
        await server.WaitAsync();
        server.ReceivedText.Should().Be("QUIT\r\n");
    }

    [Fact]
    public async Task A_452_after_two_recipients_through_the_sender_says_which_were_accepted()
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING", "ENHANCEDSTATUSCODES"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ RCPT TO:<b@example.test>",
            "C+ RCPT TO:<c@example.test>",
            "C+ DATA",
            "S: 250 2.1.0 ok", "S: 250 2.1.5 ok", "S: 250 2.1.5 ok", "S: 452 4.5.3 Too many recipients", "S: 354 go")
            .Then(SendScripts.DataLines(SendScripts.SmallText))
            .Then("S: 250 2.0.0 queued", "C: QUIT", "S: 221 bye", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        SmtpSendResult result;
        await using (var sender = Sender(server))
        {
            result = await sender.SendAsync(Message("a@example.test", "b@example.test", "c@example.test")).Safe();
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.AcceptedRecipients.Select(r => r.Address).Should().Equal("a@example.test", "b@example.test");
        result.RefusedRecipients.Should().ContainSingle().Which.Reply!.EnhancedStatusCode.Should().NotBeNull();
        result.RefusedRecipients.Single().Reply!.IsTransientNegative.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_452_to_every_recipient_is_a_transient_refusal_without_DATA_content()
    {
        var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING"),
            "C: MAIL FROM:<sender@example.test>",
            "C+ RCPT TO:<a@example.test>",
            "C+ DATA",
            "S: 250 ok", "S: 452 4.5.3 Too many recipients", "S: 554 5.5.1 no valid recipients", "C: QUIT", "S: 221 bye", "CLOSE");
        await using var server = ScriptedSmtpServer.Start(script);
        SmtpSendResult result;
        await using (var sender = Sender(server))
        {
            result = await sender.SendAsync(Message("a@example.test")).Safe();
        }

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.AcceptedRecipients.Should().BeEmpty();
        result.IsTransientFailure.Should().BeTrue("the only refusal of a recipient was 452: try again later");
        await server.WaitAsync();
        server.ReceivedText.Should().NotContain("Subject: hi");
    }
}
