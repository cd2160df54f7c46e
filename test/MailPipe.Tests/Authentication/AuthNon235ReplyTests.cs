namespace MailPipe.Tests.Authentication;

/// <summary>
/// RFC 4954 §4, §6: AUTH succeeds with 235 only. A server that answers AUTH with another 2yz (smtp-sink says
/// <c>250 2.0.0 Ok</c> to every AUTH, before any password was asked for) has not authenticated the client: the reply is
/// returned and the session does not claim to be authenticated (the CLI already required 235).
/// </summary>
public sealed class AuthNon235ReplyTests
{
    private static async Task<AsyncSmtpSession> ConnectAsync(AuthScriptServer server)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, ReceiveTimeout = TimeSpan.FromSeconds(15) });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        return session;
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("CRAM-MD5")]
    [InlineData("raw")]
    public async Task A_250_to_AUTH_is_returned_and_the_session_is_not_authenticated(string mechanism)
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN LOGIN CRAM-MD5");
            await c.ExpectAsync("AUTH ");
            await c.ReplyAsync("250 2.0.0 Ok");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 2.0.0 Ok");
        });
        await using var session = await ConnectAsync(server);

        var reply = await (mechanism switch
        {
            "PLAIN" => session.AuthPlainAsync("testuser", "secret"),
            "LOGIN" => session.AuthLoginAsync("testuser", "secret"),
            "CRAM-MD5" => session.AuthCramMd5Async("testuser", "secret"),
            _ => session.AuthenticateAsync("PLAIN", "\0testuser\0secret"u8.ToArray(), (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null)),
        });

        reply.Code.Should().Be(250);
        session.IsAuthenticated.Should().BeFalse("only 235 means AUTH succeeded (RFC 4954 §4)");
        session.AuthenticatedMechanism.Should().BeNull();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
    }
}
