using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// The session's own MAIL and RCPT commands with non-ASCII paths (RFC 6531 §3.4): without SMTPUTF8 declared on MAIL an
/// internationalised domain goes as its A-label and a non-ASCII local part is refused before the wire; with it, paths
/// go as given. Before session 20 both went out as UTF-8 in a transaction that had not declared SMTPUTF8.
/// </summary>
public class RawPathSmtpUtf8Tests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        return session;
    }

    [Fact]
    public async Task Without_SMTPUTF8_an_IDN_domain_goes_as_its_A_label_in_MAIL_and_RCPT()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@xn--exmple-cua.test> BODY=8BITMIME", "S: 250 ok",
            "C: RCPT TO:<user@xn--bcher-kva.example>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync("<sender@exämple.test>", "BODY=8BITMIME").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("user@bücher.example").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_SMTPUTF8_a_non_ASCII_local_part_is_refused_before_the_wire_and_the_session_goes_on()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<ascii@example.test>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        var mail = async () => await session.MailFromAsync("jürgen@example.test");
        (await mail.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("SMTPUTF8").And.Contain("local part");
        (await session.MailFromAsync("sender@example.test").Safe()).Code.Should().Be(250);

        var rcpt = async () => await session.RcptToAsync("<jürgen@example.test>");
        (await rcpt.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("forwardPath");
        (await session.RcptToAsync("ascii@example.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task With_SMTPUTF8_declared_on_MAIL_the_paths_go_as_given()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<jürgen@exämple.test> smtputf8", "S: 250 ok",
            "C: RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync("jürgen@exämple.test", "smtputf8").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("δοκιμή@παράδειγμα.δοκιμή").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task After_a_raw_MAIL_the_RCPT_path_goes_as_given()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test> SMTPUTF8", "S: 250 ok",
            "C: RCPT TO:<jürgen@example.test>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        await session.SendCommandAsync("MAIL FROM:<sender@example.test> SMTPUTF8").Safe();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("jürgen@example.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task Without_SMTPUTF8_a_domain_with_no_A_label_is_refused_with_that_reason()
    {
        await using var server = ScriptedSmtpServer.Start(Greeting);
        using var session = await ConnectedAsync(server);

        var mail = async () => await session.MailFromAsync("sender@\u0301abc.test");
        (await mail.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("A-label");
        session.IsConnected.Should().BeTrue();
    }
}
