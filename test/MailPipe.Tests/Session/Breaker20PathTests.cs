using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// Breaker session 20 against MailFromAsync/RcptToAsync's SMTPUTF8 rule (RFC 6531 §3.4): without SMTPUTF8 declared an
/// IDN domain goes as its A-label and a non-ASCII local part is an ArgumentException before the wire; with it, and after
/// a MAIL the caller wrote itself, the path goes as given.
/// </summary>
public class Breaker20PathTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    private static async Task<AsyncSmtpSession> ConnectedAsync(ScriptedSmtpServer server)
    {
        var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        return session;
    }

    /// <summary>64 octets of local part and 25 labels "ü": 146 octets in UTF-8, 271 as A-labels (over RFC 5321's 256).</summary>
    private static readonly string LongIdnMailbox = new string('l', 64) + "@" + string.Join('.', Enumerable.Repeat("ü", 25)) + ".test";

    [Fact]
    public void The_long_IDN_mailbox_fits_in_UTF8_and_not_as_A_labels()
    {
        (Encoding.UTF8.GetByteCount(LongIdnMailbox) + 2).Should().BeLessThanOrEqualTo(256);
        (SmtpAddressRules.ToAsciiMailbox(LongIdnMailbox)!.Length + 2).Should().BeGreaterThan(256);
    }

    /// <summary>
    /// An IDN path whose A-label form is over 256 octets: an ArgumentException naming the caller's argument
    /// (<c>reversePath</c>, <c>forwardPath</c>) and saying why, before the operation starts; the session goes on.
    /// Before: the length check of the writer threw with the parameter name "path", from inside the operation.
    /// </summary>
    [Fact]
    public async Task Without_SMTPUTF8_an_A_label_path_over_256_octets_is_refused_naming_the_argument()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RCPT TO:<ascii@example.test>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        var mail = async () => await session.MailFromAsync(LongIdnMailbox);
        var mailError = (await mail.Should().ThrowAsync<ArgumentException>()).Which;
        mailError.ParamName.Should().Be("reversePath");
        mailError.Message.Should().Contain("256").And.Contain("SMTPUTF8");
        (await session.MailFromAsync("sender@example.test").Safe()).Code.Should().Be(250);

        var rcpt = async () => await session.RcptToAsync(LongIdnMailbox);
        var rcptError = (await rcpt.Should().ThrowAsync<ArgumentException>()).Which;
        rcptError.ParamName.Should().Be("forwardPath");
        rcptError.Message.Should().Contain("256").And.Contain("SMTPUTF8");
        (await session.RcptToAsync("ascii@example.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    /// <summary>With SMTPUTF8 the same mailbox is 146 octets on the wire: it goes as given.</summary>
    [Fact]
    public async Task With_SMTPUTF8_the_long_IDN_mailbox_goes_as_given()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            $"C: MAIL FROM:<{LongIdnMailbox}> SMTPUTF8", "S: 250 ok",
            $"C: RCPT TO:<{LongIdnMailbox}>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync(LongIdnMailbox, "SMTPUTF8").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync(LongIdnMailbox).Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    /// <summary>
    /// A MAIL the caller wrote with <see cref="AsyncSmtpSession.SendBytesAsync"/> (raw, as with SendCommandAsync) after an
    /// earlier MailFromAsync without SMTPUTF8: the RCPT path goes as given, not by the earlier transaction's rule (it
    /// threw an ArgumentException for a transaction that did declare SMTPUTF8).
    /// </summary>
    [Fact]
    public async Task After_a_MAIL_written_with_SendBytesAsync_the_RCPT_path_goes_as_given()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<sender@example.test>", "S: 250 ok",
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<sender@example.test> SMTPUTF8", "S: 250 ok",
            "C: RCPT TO:<jürgen@example.test>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync("sender@example.test").Safe()).Code.Should().Be(250);
        (await session.RsetAsync().Safe()).Code.Should().Be(250);
        await session.SendBytesAsync("MAIL FROM:<sender@example.test> SMTPUTF8\r\n"u8.ToArray()).Safe();
        (await session.ReceiveReplyAsync().Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("jürgen@example.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    /// <summary>What held: the null reverse-path, white space and angle brackets around a path, a quoted local part with an IDN domain, an address literal, a non-ASCII quoted local part refused, a mixed-case SMTPUTF8 parameter.</summary>
    [Fact]
    public async Task Forms_that_hold_without_SMTPUTF8()
    {
        await using var server = ScriptedSmtpServer.Start(
            Greeting,
            "C: MAIL FROM:<>", "S: 250 ok",
            "C: RCPT TO:<user@xn--bcher-kva.example>", "S: 250 ok",
            "C: RCPT TO:<\"quoted user\"@xn--bcher-kva.example>", "S: 250 ok",
            "C: RCPT TO:<user@[192.0.2.1]>", "S: 250 ok",
            "C: RSET", "S: 250 ok",
            "C: MAIL FROM:<jürgen@exämple.test> SmtpUtf8", "S: 250 ok",
            "C: RCPT TO:<\"jü rgen\"@bücher.example>", "S: 250 ok");
        using var session = await ConnectedAsync(server);

        (await session.MailFromAsync("<>").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("  <user@bücher.example>  ").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("\"quoted user\"@bücher.example").Safe()).Code.Should().Be(250);
        var quoted = async () => await session.RcptToAsync("\"jü rgen\"@example.test");
        (await quoted.Should().ThrowAsync<ArgumentException>()).Which.Message.Should().Contain("local part");
        var literal = async () => await session.RcptToAsync("jürgen@[192.0.2.1]");
        (await literal.Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("forwardPath");
        (await session.RcptToAsync("user@[192.0.2.1]").Safe()).Code.Should().Be(250);
        (await session.RsetAsync().Safe()).Code.Should().Be(250);
        (await session.MailFromAsync("jürgen@exämple.test", "SmtpUtf8").Safe()).Code.Should().Be(250);
        (await session.RcptToAsync("\"jü rgen\"@bücher.example").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
