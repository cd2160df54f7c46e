using System.Security.Cryptography;
using System.Text;

namespace MailPipe.Tests.Authentication;

/// <summary>A peer's AUTH probes (breaker18): a server that never ends the exchange, UTF-8 identities, secrets in exception messages.</summary>
public sealed class Breaker18AuthTests
{
    private static async Task<AsyncSmtpSession> ConnectAsync(AuthScriptServer server)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, ReceiveTimeout = TimeSpan.FromSeconds(15) });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        return session;
    }

    /// <summary>The server answers every line with another 334 until the client gives up or closes.</summary>
    private static Func<AuthScriptConnection, Task> EndlessChallenges(string mechanism) => async c =>
    {
        await c.GreetAndEhloAsync($"AUTH {mechanism}");
        while (await c.ReadLineAsync() is not null)
        {
            await c.ReplyAsync("334 " + Convert.ToBase64String("again"u8));
        }
    };

    [Theory]
    [InlineData("raw")]
    [InlineData("LOGIN")]
    public async Task A_server_that_answers_every_line_with_334_ends_with_AuthenticationError_after_a_bounded_number_of_rounds(string mechanism)
    {
        await using var server = new AuthScriptServer(EndlessChallenges(mechanism == "raw" ? "X-LOOP" : mechanism));
        await using var session = await ConnectAsync(server);

        Func<Task> act = mechanism == "raw"
            ? () => session.AuthenticateAsync("X-LOOP", null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>("more"u8.ToArray()))
            : () => session.AuthLoginAsync("user", "secret-password");

        (await act.Should().ThrowAsync<SmtpException>().WaitAsync(TimeSpan.FromSeconds(30))).Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        server.Received.Count.Should().BeLessThan(40, "the exchange is bounded");
    }

    [Fact]
    public async Task Plain_and_Login_send_UTF8_identities_and_passwords_as_UTF8()
    {
        const string user = "jürgen@exämple.test";
        const string password = "pässwörd-€";
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN LOGIN");
            var plain = await c.ExpectAsync("AUTH PLAIN ");
            AuthScriptConnection.FromBase64(plain["AUTH PLAIN ".Length..]).Should().Equal(Encoding.UTF8.GetBytes($"\0{user}\0{password}"));
            await c.ReplyAsync("535 5.7.8 no");
            await c.ExpectAsync("AUTH LOGIN");
            await c.ReplyAsync("334 VXNlcm5hbWU6");
            Encoding.UTF8.GetString(AuthScriptConnection.FromBase64((await c.ReadLineAsync())!)).Should().Be(user);
            await c.ReplyAsync("334 UGFzc3dvcmQ6");
            Encoding.UTF8.GetString(AuthScriptConnection.FromBase64((await c.ReadLineAsync())!)).Should().Be(password);
            await c.ReplyAsync("235 2.7.0 ok");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthPlainAsync(user, password)).Code.Should().Be(535);
        session.IsConnected.Should().BeTrue("a 535 is a reply");
        (await session.AuthLoginAsync(user, password)).Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("LOGIN");
        await server.Completion;
    }

    [Fact]
    public void A_password_SASLprep_refuses_is_refused_without_naming_its_characters()
    {
        // U+0080 is a control character (RFC 3454 C.2.2), U+E000 private use (C.3): SASLprep prohibits both.
        foreach (var password in new[] { "se\u0080cret", "se\uE000cret" })
        {
            using var session = new AsyncSmtpSession();
            var error = FluentActions.Invoking(() => { _ = session.AuthScramAsync("user", password, HashAlgorithmName.SHA256); }).Should().Throw<ArgumentException>().Which;
            error.Message.Should().NotContainAny("0080", "E000", "cret").And.Contain("password");
        }
    }

    [Theory]
    [InlineData("AUTH\tPLAIN ")]
    [InlineData("auth\tplain\t")]
    [InlineData(" AUTH PLAIN ")]
    public async Task A_raw_AUTH_with_other_white_space_sent_by_SendCommandAsync_is_redacted_too(string prefix)
    {
        const string password = "Raw-Secret-99";
        var initial = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0testuser\0" + password));
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN");
            (await c.ReadLineAsync()).Should().Be(prefix + initial);
            await c.ReplyAsync("334 " + Convert.ToBase64String("server-secret-challenge"u8));
            (await c.ReadLineAsync()).Should().Be(initial);
            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        var log = new AuthTestLoggerFactory();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = log });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        await session.SendCommandAsync(prefix + initial);
        (await session.ReceiveReplyAsync()).Code.Should().Be(334);
        await session.SendCommandAsync(initial);
        (await session.ReceiveReplyAsync()).Code.Should().Be(235);
        await server.Completion;

        log.Text.Should().NotContain(initial).And.NotContain(password).And.NotContain(Convert.ToBase64String("server-secret-challenge"u8));
        log.Text.Should().Contain("<redacted>");
    }
}
