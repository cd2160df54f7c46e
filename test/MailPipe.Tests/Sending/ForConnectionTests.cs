using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>Issue #14: <see cref="SmtpMessage.ForConnection"/> gives the capabilities of the connection that carries a send to whoever makes the message, before MAIL.</summary>
public class ForConnectionTests
{
    [Fact]
    public async Task The_selector_sees_each_connections_capabilities_before_MAIL_and_its_message_is_the_one_sent()
    {
        var seen = new List<bool>();
        var message = SmtpMessage.ForConnection(Envelope("one@example.test"), capabilities =>
        {
            seen.Add(capabilities.Supports8BitMime);
            var envelope = Envelope("one@example.test") with { Body = capabilities.Supports8BitMime ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit };
            return SmtpMessage.FromBytes(envelope, Encoding.ASCII.GetBytes(SmallText));
        });

        foreach (var eightBit in new[] { true, false })
        {
            var script = Script(
                eightBit ? Ehlo("PIPELINING", "8BITMIME") : Ehlo("PIPELINING"),
                [eightBit ? "C: MAIL FROM:<sender@example.test> BODY=8BITMIME" : "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<one@example.test>", "C+ DATA", "S: 250 ok", "S: 250 ok", "S: 354 go", .. DataLines(SmallText), "S: 250 queued"]);
            await using var server = ScriptedSmtpServer.Start(script);
            using var session = await ConnectedAsync(server);

            var result = await session.SendAsync(message).Safe();
            await server.WaitAsync();

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            result.Envelope.Body.Should().Be(eightBit ? SmtpBodyType.EightBitMime : SmtpBodyType.SevenBit, "the result carries the envelope that was sent");
        }

        seen.Should().Equal(true, false);
    }

    [Theory]
    [InlineData("throws")]
    [InlineData("fewer recipients")]
    public async Task A_selector_that_fails_gives_NotSent_ContentReadFailed_before_anything_is_written(string failure)
    {
        var message = SmtpMessage.ForConnection(Envelope("one@example.test", "two@example.test"), _ => failure == "throws"
            ? throw new FormatException("bad header")
            : SmtpMessage.FromBytes(Envelope("one@example.test"), Encoding.ASCII.GetBytes(SmallText)));
        var script = Script(Ehlo("PIPELINING"), "C: QUIT", "S: 221 bye");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();
        await session.QuitAsync().Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var exception = result.Exception.Should().BeAssignableTo<SmtpException>().Which;
        exception.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed);
        exception.InnerException.Should().BeOfType(failure == "throws" ? typeof(FormatException) : typeof(InvalidOperationException));
        result.Recipients.Should().HaveCount(2);
    }
}
