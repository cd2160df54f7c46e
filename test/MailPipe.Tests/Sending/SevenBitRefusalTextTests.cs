using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Sending;

/// <summary>
/// Session 13 probes: 8-bit content refused for a declaration of 7-bit (<see cref="SmtpBodyType.SevenBit"/>) or for a
/// server without 8BITMIME says which, where the octet is, and what to do. The refusal said "the server does not offer
/// 8BITMIME" to a server that offered it.
/// </summary>
public class SevenBitRefusalTextTests
{
    private static readonly byte[] EightBit = Encoding.UTF8.GetBytes("Subject: caf\u00e9\r\n\r\nbody\r\n");

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();
        return session;
    }

    private static string[] Ehlo(params string[] extensions) =>
        ["S: 220 mail.example.test ESMTP ready", "C: EHLO client.example.test", .. extensions.Length == 0 ? ["S: 250 mail.example.test"] : (string[])["S: 250-mail.example.test", .. extensions[..^1].Select(e => "S: 250-" + e), "S: 250 " + extensions[^1]]];

    [Fact]
    public async Task In_memory_8bit_content_declared_SevenBit_to_a_server_with_8BITMIME_is_NotSent_naming_the_declaration()
    {
        // The text said the message "needs 8BITMIME, which the server does not offer" to a server that offered it.
        await using var server = ScriptedSmtpServer.Start([.. Ehlo("8BITMIME"), "C: NOOP", "S: 250 Ok"]);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test") { Body = SmtpBodyType.SevenBit }, EightBit).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.Message.Should().Contain("SmtpEnvelope.Body").And.Contain("SevenBit").And.Contain("offset 12").And.NotContain("does not offer");
        await session.NoopAsync().Safe();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streamed_8bit_content_declared_SevenBit_to_a_server_with_8BITMIME_is_refused_naming_the_declaration()
    {
        // The refusal said "the server does not offer 8BITMIME" to a server that offered it: the envelope declared 7-bit.
        var script = SmtpScript.Parse([.. Ehlo("8BITMIME"), "C: MAIL FROM:<a@example.test>", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok", "C: DATA", "S: 354 go"]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test") { Body = SmtpBodyType.SevenBit }, new MemoryStream(EightBit)).Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ExtensionNotSupported);
        result.Exception!.InnerException.Should().BeOfType<SmtpContentRefusedException>().Which.Offset.Should().Be(12);
        result.Exception.Message.Should().Contain("SmtpEnvelope.Body").And.Contain("SevenBit").And.NotContain("does not offer");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Streamed_8bit_content_without_8BITMIME_is_refused_saying_what_to_do()
    {
        var script = SmtpScript.Parse([.. Ehlo(), "C: MAIL FROM:<a@example.test>", "S: 250 Ok", "C: RCPT TO:<b@example.test>", "S: 250 Ok", "C: DATA", "S: 354 go"]).ReadUntilClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(new SmtpEnvelope("a@example.test", "b@example.test"), new MemoryStream(EightBit)).Safe();

        result.Exception!.Message.Should().Contain("does not offer 8BITMIME").And.Contain("quoted-printable or base64");
        await server.WaitAsync();
    }
}
