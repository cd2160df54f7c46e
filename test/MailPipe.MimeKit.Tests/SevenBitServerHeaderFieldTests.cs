using System.Text;
using MailPipe.Tests.Support;
using MimeKit;
using static MailPipe.MimeKit.Tests.MimeSendScriptedTests;

namespace MailPipe.MimeKit.Tests;

/// <summary>
/// Session 13: a message whose header field holds 8-bit octets (raw UTF-8 kept from a parsed message), sent to a server
/// without 8BITMIME. Preparing the parts for 7-bit never re-encodes a field, so the data was refused at that octet with
/// "an 8-bit octet (0xC3) at offset 23 and the server does not offer 8BITMIME", which named neither the field nor what
/// to do, and the connection was closed inside DATA. Now NotSent before MAIL, naming the field and where it is.
/// </summary>
public class SevenBitServerHeaderFieldTests
{
    [Fact]
    public async Task A_raw_UTF8_Subject_to_a_server_without_8BITMIME_is_NotSent_before_MAIL_naming_the_field_and_what_to_do()
    {
        var message = BrkMime2ProbeTests.Parse("From: sender@example.test\r\nTo: bob@example.test\r\nSubject: Grüße\r\n\r\nbody\r\n");

        var (result, session) = await SendToSevenBitServerAsync(message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("The header field Subject of the message's header").And.Contain("message.Headers[\"Subject\"] = value");
        session.IsConnected.Should().BeTrue("nothing of the message was written: the connection goes on");
        session.Dispose();
    }

    [Fact]
    public async Task A_raw_UTF8_field_of_a_part_is_named_with_the_part()
    {
        var message = BrkMime2ProbeTests.Parse("From: sender@example.test\r\nTo: bob@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
            + "--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
            + "--XX\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Description: Übersicht\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n--XX--\r\n");

        var (result, session) = await SendToSevenBitServerAsync(message);

        result.Exception!.Message.Should().Contain("The header field Content-Description of part 2 (application/octet-stream, \"a.bin\")");
        session.Dispose();
    }

    [Fact]
    public async Task A_non_ASCII_mailbox_says_that_it_needs_SMTPUTF8()
    {
        var message = BrkMime2ProbeTests.Parse("From: sender@example.test\r\nTo: bob@example.test\r\nReply-To: jörg@example.test\r\nSubject: x\r\n\r\nbody\r\n");

        var (result, session) = await SendToSevenBitServerAsync(message);

        result.Exception!.Message.Should().Contain("The header field Reply-To").And.Contain("SMTPUTF8");
        session.Dispose();
    }

    [Fact]
    public async Task A_raw_UTF8_Bcc_is_not_sent_and_does_not_stop_the_message()
    {
        var message = BrkMime2ProbeTests.Parse("From: sender@example.test\r\nTo: bob@example.test\r\nBcc: \"Jörg\" <bob@example.test>\r\nSubject: x\r\n\r\nbody\r\n");
        await using var server = SevenBitServerTakingOneMessage([]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(message).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.Exception?.Message);
        await server.WaitAsync();
    }

    /// <summary>Sends <paramref name="message"/> to a scripted server without 8BITMIME that expects no MAIL, only a NOOP after it.</summary>
    private static async Task<(SmtpSendResult Result, AsyncSmtpSession Session)> SendToSevenBitServerAsync(MimeMessage message)
    {
        await using var server = ScriptedSmtpServer.Start(Ehlo("PIPELINING").Then("C: NOOP", "S: 250 ok"));
        var session = await ConnectedAsync(server);
        var result = await session.SendAsync(message).Safe();
        if (session.IsConnected)
        {
            (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing of the message was written");
        }

        await server.WaitAsync();
        return (result, session);
    }
}
