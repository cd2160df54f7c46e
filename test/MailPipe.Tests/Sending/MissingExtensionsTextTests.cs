using System.Text;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// The reason a message is not sent names every extension it needs that the server lacks (found against smtp-server
/// 3.21.6 with neither SMTPUTF8 nor 8BITMIME: a UTF-8 sender's message was refused for 8BITMIME only, which sent the
/// user to encode content the address could never be sent without).
/// </summary>
public class MissingExtensionsTextTests
{
    [Fact]
    public async Task A_UTF8_sender_with_8bit_content_on_a_server_without_SMTPUTF8_or_8BITMIME_names_both()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING")));
        using var session = await ConnectedAsync(server);
        var envelope = new SmtpEnvelope("josé@example.test", "one@example.test");

        var result = await session.SendAsync(envelope, Encoding.UTF8.GetBytes("From: José <josé@example.test>\r\nSubject: olá\r\n\r\nHi.\r\n")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        error.Message.Should().Contain("SMTPUTF8 (RFC 6531)").And.Contain("8BITMIME (RFC 6152)");
        error.Message.IndexOf("SMTPUTF8", StringComparison.Ordinal).Should().BeLessThan(error.Message.IndexOf("8BITMIME", StringComparison.Ordinal), "the address's need comes first");
    }

    [Fact]
    public async Task A_UTF8_sender_with_ASCII_content_names_SMTPUTF8_only()
    {
        await using var server = ScriptedSmtpServer.Start(Script(Ehlo("PIPELINING")));
        using var session = await ConnectedAsync(server);
        var envelope = new SmtpEnvelope("josé@example.test", "one@example.test");

        var result = await session.SendAsync(envelope, Ascii("Subject: hi\r\n\r\nHi.\r\n")).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception!.Message.Should().Contain("SMTPUTF8 (RFC 6531)").And.NotContain("8BITMIME");
    }
}
