using System.Text;
using MailPipe.Tests.Support;
using MimeKit;

namespace MailPipe.MimeKit.Tests;

/// <summary>Breaker17 probe of issue #14: Bcc and Resent-Bcc are left out of the message's own header only.</summary>
public class Breaker17BccProbeTests
{
    private static MimeMessage Parse(string text) => MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(text.ReplaceLineEndings("\r\n"))));

    [Fact]
    public async Task Bcc_and_Resent_Bcc_are_left_out_of_the_messages_header_only_an_attached_message_arrives_as_it_is()
    {
        var attached = Parse("""
            From: someone@example.test
            To: x@example.test
            Bcc: attachedbcc@example.test
            Resent-Bcc: attachedresentbcc@example.test
            Subject: attached

            Inner.

            """);
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("author@example.test"));
        message.To.Add(MailboxAddress.Parse("to@example.test"));
        message.Bcc.Add(MailboxAddress.Parse("hidden@example.test"));
        message.Bcc.Add(new MailboxAddress(new string('x', 70), "hidden2@example.test")); // folded
        message.Subject = "forward";
        message.Body = new Multipart("mixed") { new TextPart("plain") { Text = "See attached." }, new MessagePart { Message = attached } };
        var data = new List<byte>();
        var script = SmtpScript.Parse(["S: 220 mail.example.test ESMTP", "C: EHLO client.example.test", "S: 250-mail.example.test", "S: 250 PIPELINING"])
            .Then("C: MAIL FROM:<author@example.test>", "C: RCPT TO:<to@example.test>", "C: RCPT TO:<hidden@example.test>", "C: RCPT TO:<hidden2@example.test>", "C: DATA", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 250 ok", "S: 354 go")
            .Do("READ DATA", async (server, ct) =>
            {
                while (await server.ReadLineAsync(ct) is { } line && !line.AsSpan().SequenceEqual(".\r\n"u8))
                {
                    data.AddRange(line.Length > 0 && line[0] == (byte)'.' ? line[1..] : line);
                }
            })
            .Then("S: 250 queued");
        await using var server = ScriptedSmtpServer.Start(script);
        await using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();

        var result = await session.SendAsync(message).Safe();
        await server.WaitAsync();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        var sent = Encoding.Latin1.GetString([.. data]);
        sent.Should().NotContain("hidden").And.NotContain("xxxx", "the message's own Bcc field, folded lines included, is never on the wire");
        using var attachedBytes = new MemoryStream();
        attached.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, attachedBytes);
        sent.Should().Contain(Encoding.Latin1.GetString(attachedBytes.ToArray()), "the attached message is content: it arrives as it is, its Bcc and Resent-Bcc fields included");
        data.Should().Equal(MimeTestMessages.ExpectedData(message));
    }
}
