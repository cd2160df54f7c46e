using System.Security.Cryptography;
using MailPipe.Tests.Support;
using static MailPipe.Tests.Authentication.AuthTestData;

namespace MailPipe.Tests.Authentication;

/// <summary>
/// A breaker's probe of the AUTH cancel with '*' after a 334 challenge that is not base64 (merge d51ff7e): only a
/// negative answer (4yz/5yz, not 421) ends the exchange with the session usable; anything else leaves it in doubt.
/// </summary>
public sealed class Breaker16AuthCancelTests
{
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(15);

    private static async Task<AsyncSmtpSession> ConnectAsync(AuthScriptServer server, TimeProvider? clock = null)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions
        {
            AllowCleartextAuthentication = true,
            ReceiveTimeout = ReceiveTimeout,
            TimeProvider = clock ?? TimeProvider.System,
        });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        return session;
    }

    /// <summary>A 3yz answer to '*' other than 334 does not end the exchange: not a reply AUTH may get, the session is closed.</summary>
    [Fact]
    public async Task An_intermediate_answer_to_the_star_leaves_the_session_closed()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 Username:");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync("354 go ahead");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthLoginAsync(User, Password)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.ProtocolError);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task No_answer_to_the_star_times_out_and_closes()
    {
        var starRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            await c.ReadLineAsync();
            await c.ReplyAsync("334 Username:");
            (await c.ReadLineAsync()).Should().Be("*");
            starRead.TrySetResult();
            await c.DrainAsync();
        });
        var clock = new ObservableTimeProvider();
        await using var session = await ConnectAsync(server, clock);

        // The receive timeout on the fake clock, moved only once the read of the reply to '*' waits: a real 300 ms timeout
        // also ran for the greeting, EHLO and 334 replies, which a loaded machine's server can take longer than that to send.
        // The 334's deadline (armed only if its read had to wait) was stopped before the '*' went out, so once the server
        // has the '*', a pending receive deadline is that of the reply to '*'.
        var login = session.AuthLoginAsync(User, Password);
        await starRead.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
        await clock.WaitUntilPendingAsync(ReceiveTimeout);
        clock.Advance(ReceiveTimeout - TimeSpan.FromSeconds(1));
        login.IsCompleted.Should().BeFalse("the receive timeout has not elapsed yet");
        clock.Advance(TimeSpan.FromSeconds(1));

        var error = (await FluentActions.Awaiting(() => login.Safe()).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
        session.IsAuthenticated.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task A_server_that_closes_after_the_star_leaves_the_session_disconnected()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            await c.ReadLineAsync();
            await c.ReplyAsync("334 Username:");
            (await c.ReadLineAsync()).Should().Be("*");
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthLoginAsync(User, Password)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.ConnectionClosed);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    /// <summary>SCRAM's server-first message not base64, and a custom mechanism's challenge: cancelled, the handler never called, and a mail transaction can follow.</summary>
    [Theory]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("X-CUSTOM")]
    public async Task After_the_501_the_session_can_send_EHLO_and_MAIL(string mechanism)
    {
        var called = false;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH " + mechanism);
            (await c.ReadLineAsync()).Should().StartWith("AUTH " + mechanism);
            await c.ReplyAsync("334 r=not base64 at all");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync("501 5.7.0 cancelled");
            (await c.ReadLineAsync()).Should().Be("EHLO client.test");
            await c.EhloReplyAsync("AUTH " + mechanism);
            (await c.ReadLineAsync()).Should().Be("MAIL FROM:<a@example.test>");
            await c.ReplyAsync("250 2.1.0 OK");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        Func<Task> act = mechanism == "X-CUSTOM"
            ? () => session.AuthenticateAsync(mechanism, null, (_, _) => { called = true; return ValueTask.FromResult<ReadOnlyMemory<byte>?>(null); })
            : () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256);

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Reply!.Code.Should().Be(501);
        called.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        session.IsAuthenticated.Should().BeFalse();
        (await session.EhloAsync("client.test")).Code.Should().Be(250);
        (await session.MailFromAsync("a@example.test")).Code.Should().Be(250);
    }

    /// <summary>
    /// A server that never stops challenging: after 16 rounds the client cancels with '*' (before, it closed the
    /// connection in the middle of the exchange); after the 501 the session is usable.
    /// </summary>
    [Fact]
    public async Task More_than_16_challenges_are_cancelled_with_a_star_and_the_session_stays_usable()
    {
        var rounds = 0;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH X-LOOP");
            (await c.ReadLineAsync()).Should().Be("AUTH X-LOOP");
            while (true)
            {
                await c.ReplyAsync("334 " + Convert.ToBase64String("again"u8));
                var line = await c.ReadLineAsync();
                if (line == "*")
                {
                    break;
                }

                rounds++;
            }

            await c.ReplyAsync("501 5.7.0 cancelled");
            (await c.ReadLineAsync()).Should().Be("NOOP");
            await c.ReplyAsync("250 2.0.0 OK");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthenticateAsync("X-LOOP", null, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>("more"u8.ToArray()))).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("more than 16 challenges");
        error.Reply!.Code.Should().Be(501);
        error.IsTransient.Should().BeFalse();
        rounds.Should().Be(16);
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    /// <summary>A 4yz answer to '*' (454 temporary authentication failure, RFC 4954 §6) makes the failure transient; a 5yz does not.</summary>
    [Theory]
    [InlineData("454 4.7.0 temporary authentication failure", true)]
    [InlineData("501 5.7.0 cancelled", false)]
    public async Task The_answer_to_the_star_decides_whether_the_failure_is_transient(string answer, bool transient)
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 not base64!");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync(answer);
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthLoginAsync(User, Password)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.IsTransient.Should().Be(transient);
        session.IsConnected.Should().BeTrue();
    }

    /// <summary>The pool: a connection whose AUTH was cancelled (501, still connected) is never lent: the message is not sent, no MAIL reaches the server.</summary>
    [Fact]
    public async Task The_pool_never_lends_a_connection_whose_AUTH_was_cancelled()
    {
        string? after = null;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 Username:");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync("501 5.7.0 cancelled");
            after = await c.ReadLineAsync();
            if (after is not null)
            {
                await c.ReplyAsync("221 2.0.0 bye");
            }
        });
        var options = MailPipe.Tests.Pooling.PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Credentials = new System.Net.NetworkCredential(User, Password);
        options.Authentication = new SmtpAuthenticationOptions { Mechanism = SmtpAuthenticationMechanisms.Login };
        options.Session = new SmtpSessionOptions { AllowCleartextAuthentication = true };
        var sender = new SmtpSender(options);
        try
        {
            var result = await sender.SendAsync(MailPipe.Tests.Pooling.PoolTestMessages.Create("auth", 0).Message).Safe();
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        }
        finally
        {
            await sender.DisposeAsync().AsTask().Safe();
        }

        await server.Completion;
        after.Should().BeOneOf([null, "QUIT"], "no MAIL on a connection whose AUTH failed");
    }
}
