using System.Text;
using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Interop;

/// <summary>Reply shapes real servers send that are legal (RFC 5321 §4.2) or common, read as what they mean.</summary>
public sealed class ReplyShapeQuirkTests
{
    [Fact]
    public async Task A_UTF8_character_split_between_two_reads_is_decoded_whole()
    {
        var bytes = Encoding.UTF8.GetBytes("250 2.0.0 Grüße 日本\r\n");
        var cut = Array.IndexOf(bytes, (byte)0xE6) + 1; // inside the three bytes of 日
        var script = SmtpScript.Parse(SendScripts.Ehlo()).Expect("NOOP")
            .Do("reply in two reads", async (server, ct) =>
            {
                await server.SendAsync(bytes[..cut], ct);
                await server.SendAsync(bytes[cut..], ct);
            });
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var reply = await session.NoopAsync().Safe();

        reply.Text.Should().Be("Grüße 日本", "Text leaves out the enhanced status code");
        reply.Lines.Should().Equal("2.0.0 Grüße 日本");
        await server.WaitAsync();
    }

    [Theory]
    [InlineData("220")]
    [InlineData("220 ")]
    public async Task A_greeting_with_no_text_is_a_220(string greeting)
    {
        await using var server = ScriptedSmtpServer.Start("S: " + greeting, "C: EHLO client.example.test", "S: 250 ok");
        using var session = new AsyncSmtpSession();

        var reply = await session.ConnectAsync(server.ClientStream).Safe();
        (await session.EhloAsync("client.example.test").Safe()).Code.Should().Be(250);

        reply!.Code.Should().Be(220);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_reply_with_only_the_enhanced_code_keeps_it()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo("ENHANCEDSTATUSCODES"), "C: NOOP", "S: 250 2.0.0"]);
        using var session = await SendScripts.ConnectedAsync(server);

        var reply = await session.NoopAsync().Safe();

        reply.Code.Should().Be(250);
        reply.EnhancedStatusCode!.ToString().Should().Be("2.0.0");
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_multiline_refusal_with_the_enhanced_code_on_every_line_is_read_once()
    {
        await using var server = ScriptedSmtpServer.Start([.. SendScripts.Ehlo("ENHANCEDSTATUSCODES"),
            "C: RCPT TO:<a@example.test>",
            "S: 550-5.7.1 Service unavailable; client host blocked",
            "S: 550-5.7.1 see https://example.test/why",
            "S: 550 5.7.1 contact postmaster"]);
        using var session = await SendScripts.ConnectedAsync(server);

        var reply = await session.RcptToAsync("a@example.test").Safe();

        reply.Code.Should().Be(550);
        reply.Lines.Should().HaveCount(3);
        reply.EnhancedStatusCode!.ToString().Should().Be("5.7.1");
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }

    [Fact]
    public async Task An_EHLO_reply_with_an_empty_last_line_still_gives_the_rest()
    {
        await using var server = ScriptedSmtpServer.Start(
            SendScripts.Greeting,
            "C: EHLO client.example.test",
            "S: 250-mail.example.test",
            "S: 250-PIPELINING",
            "S: 250-SIZE 1000",
            "S: 250 ");
        using var session = await SendScripts.ConnectedAsync(server);

        session.Capabilities.SupportsPipelining.Should().BeTrue();
        session.Capabilities.Contains("SIZE").Should().BeTrue();
        session.Capabilities.MaxMessageSize.Should().Be(1000);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Pipelined_replies_cut_at_every_byte_position_give_the_same_result()
    {
        const string replies = "250-2.1.0 sender\r\n250 2.1.0 ok\r\n550 5.1.1 a unknown\r\n250 2.1.5 ok\r\n354 go\r\n";
        for (var cut = 1; cut < replies.Length; cut++)
        {
            var script = SendScripts.Script(SendScripts.Ehlo("PIPELINING"),
                    "C: MAIL FROM:<sender@example.test>", "C+ RCPT TO:<a@example.test>", "C+ RCPT TO:<b@example.test>", "C+ DATA")
                .SendPieces(replies[..cut], replies[cut..])
                .Then(SendScripts.DataLines(SendScripts.SmallText))
                .SendPieces("250-2.0.0 ok\r\n250 2.0.0 ", "queued\r\n");
            await using var server = ScriptedSmtpServer.Start(script);
            using var session = await SendScripts.ConnectedAsync(server);

            var result = await session.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope(SendScripts.Sender, "a@example.test", "b@example.test"), Encoding.ASCII.GetBytes(SendScripts.SmallText))).Safe();

            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, "cut at {0}", cut);
            result.MailReply!.Lines.Should().HaveCount(2);
            result.Recipients.Select(r => r.Reply!.Code).Should().Equal([550, 250], "cut at {0}", cut);
            await server.WaitAsync();
        }
    }
}
