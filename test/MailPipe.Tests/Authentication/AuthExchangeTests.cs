using System.Net;
using System.Security.Cryptography;
using System.Text;
using Xunit.Abstractions;
using static MailPipe.Tests.Authentication.AuthTestData;

namespace MailPipe.Tests.Authentication;

/// <summary>AUTH exchanges (RFC 4954) against the scripted server, over clear text unless a test says otherwise.</summary>
public sealed class AuthExchangeTests(ITestOutputHelper output)
{
    private static AsyncSmtpSession NewSession(bool allowCleartext = true, AuthTestLoggerFactory? log = null) => new(new SmtpSessionOptions
    {
        AllowCleartextAuthentication = allowCleartext,
        ReceiveTimeout = TimeSpan.FromSeconds(15),
        LoggerFactory = log,
    });

    private static async Task<AsyncSmtpSession> ConnectAsync(AuthScriptServer server, bool allowCleartext = true)
    {
        var session = NewSession(allowCleartext);
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        return session;
    }

    [Fact]
    public async Task Plain_sends_the_credentials_as_initial_response()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN");
            var line = await c.ExpectAsync("AUTH PLAIN ");
            Text(line["AUTH PLAIN ".Length..]).Should().Be($"\0{User}\0{Password}");
            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        await using var session = await ConnectAsync(server);

        var reply = await session.AuthPlainAsync(User, Password);

        reply.Code.Should().Be(235);
        session.IsAuthenticated.Should().BeTrue();
        session.AuthenticatedMechanism.Should().Be("PLAIN");
        await server.Completion;
    }

    [Fact]
    public async Task Plain_carries_an_authorization_identity()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN");
            var line = await c.ExpectAsync("AUTH PLAIN ");
            Text(line["AUTH PLAIN ".Length..]).Should().Be($"boss\0{User}\0{Password}");
            await c.ReplyAsync("235 ok");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthenticateAsync(new NetworkCredential(User, Password), new SmtpAuthenticationOptions { Mechanism = "plain", AuthorizationId = "boss" })).Code.Should().Be(235);
        await server.Completion;
    }

    [Fact]
    public async Task A_rejected_password_is_a_returned_535_and_the_session_stays_usable()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN");
            await c.ExpectAsync("AUTH PLAIN ");
            await c.ReplyAsync("535 5.7.8 Error: authentication failed: authentication failure");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 ok");
        });
        await using var session = await ConnectAsync(server);

        var reply = await session.AuthPlainAsync(User, "wrong");

        reply.Code.Should().Be(535);
        reply.EnhancedStatusCode.Should().Be(EnhancedStatusCode.Parse("5.7.8"));
        session.IsAuthenticated.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
    }

    [Fact]
    public async Task Login_answers_the_prompts_by_step()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN PLAIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 VXNlciBOYW1lAA=="); // aiosmtpd's "User Name\0"
            Text((await c.ReadLineAsync())!).Should().Be(User);
            await c.ReplyAsync("334 UGFzc3dvcmQA"); // "Password\0"
            Text((await c.ReadLineAsync())!).Should().Be(Password);
            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthLoginAsync(User, Password)).Code.Should().Be(235);
        await server.Completion;
    }

    [Fact]
    public async Task CramMd5_answers_the_RFC_2195_challenge()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH CRAM-MD5");
            (await c.ReadLineAsync()).Should().Be("AUTH CRAM-MD5");
            await c.ReplyAsync("334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
            (await c.ReadLineAsync()).Should().Be("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
            await c.ReplyAsync("235 ok");
        });
        await using var session = await ConnectAsync(server, allowCleartext: false);

        (await session.AuthCramMd5Async("tim", "tanstaaftanstaaf")).Code.Should().Be(235);
        await server.Completion;
    }

    [Theory]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("SCRAM-SHA-1")]
    public async Task Scram_verifies_the_server_final_message_sent_as_334_and_answers_it_with_an_empty_line(string mechanism)
    {
        var hash = mechanism == "SCRAM-SHA-256" ? HashAlgorithmName.SHA256 : HashAlgorithmName.SHA1;
        var scram = new TestScramServer(hash, User, Password);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync($"AUTH {mechanism}");
            var line = await c.ExpectAsync($"AUTH {mechanism} ");
            await c.ReplyAsync("334 " + B64(scram.ServerFirst(Text(line[(mechanism.Length + 6)..]))));
            var serverFinal = scram.ServerFinal(Text((await c.ReadLineAsync())!));
            serverFinal.Should().NotBeNull("the client proof must verify");
            await c.ReplyAsync("334 " + B64(serverFinal!)); // Postfix/Cyrus style
            (await c.ReadLineAsync()).Should().Be(string.Empty);
            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        await using var session = await ConnectAsync(server, allowCleartext: false);

        var reply = await session.AuthScramAsync(User, Password, hash);

        reply.Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be(mechanism);
        await server.Completion;
    }

    [Fact]
    public async Task Scram_refuses_a_235_that_skipped_the_server_signature_and_closes()
    {
        var scram = new TestScramServer(HashAlgorithmName.SHA256, User, Password);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256");
            var line = await c.ExpectAsync("AUTH SCRAM-SHA-256 ");
            await c.ReplyAsync("334 " + B64(scram.ServerFirst(Text(line[19..]))));
            await c.ReadLineAsync();
            await c.ReplyAsync("235 2.7.0 trust me");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var act = () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        session.IsConnected.Should().BeFalse();
        session.IsAuthenticated.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task Scram_refuses_a_server_that_does_not_know_the_password()
    {
        var impostor = new TestScramServer(HashAlgorithmName.SHA256, User, "other password");
        var linesAfterServerFinal = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256");
            var line = await c.ExpectAsync("AUTH SCRAM-SHA-256 ");
            await c.ReplyAsync("334 " + B64(impostor.ServerFirst(Text(line[19..]))));
            await c.ReadLineAsync();
            await c.ReplyAsync("334 " + B64("v=" + Convert.ToBase64String(new byte[32])));
            linesAfterServerFinal = await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var act = () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        linesAfterServerFinal.Should().Be(0);
    }

    [Fact]
    public async Task XOAuth2_acknowledges_the_error_JSON_and_the_next_attempt_uses_a_refreshed_token()
    {
        var tokens = new Queue<string>(["token-expired", "token-fresh"]);
        var calls = 0;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH XOAUTH2");
            var first = await c.ExpectAsync("AUTH XOAUTH2 ");
            Text(first[13..]).Should().Be("user=me@example.test\u0001auth=Bearer token-expired\u0001\u0001");
            await c.ReplyAsync("334 " + B64("{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"https://mail.google.com/\"}"));
            (await c.ReadLineAsync()).Should().Be(string.Empty);
            await c.ReplyAsync("535-5.7.8 Username and Password not accepted.\r\n535 5.7.8 Learn more");
            var second = await c.ExpectAsync("AUTH XOAUTH2 ");
            Text(second[13..]).Should().Contain("auth=Bearer token-fresh\u0001");
            await c.ReplyAsync("235 2.7.0 Accepted");
        });
        await using var session = await ConnectAsync(server);
        ValueTask<string> Provider(CancellationToken _)
        {
            calls++;
            return ValueTask.FromResult(tokens.Dequeue());
        }

        var refused = await session.AuthXOAuth2Async("me@example.test", Provider);
        var accepted = await session.AuthXOAuth2Async("me@example.test", Provider);

        refused.Code.Should().Be(535);
        accepted.Code.Should().Be(235);
        calls.Should().Be(2);
        await server.Completion;
    }

    [Fact]
    public async Task OAuthBearer_sends_host_and_port_and_acknowledges_the_error_JSON_with_0x01()
    {
        var port = 0;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH OAUTHBEARER XOAUTH2");
            var first = await c.ExpectAsync("AUTH OAUTHBEARER ");
            Text(first[17..]).Should().Be($"n,a=me@example.test,\u0001host=127.0.0.1\u0001port={port}\u0001auth=Bearer tok-1\u0001\u0001");
            await c.ReplyAsync("334 " + B64("{\"status\":\"invalid_token\",\"scope\":\"mail\"}"));
            (await c.ReadLineAsync()).Should().Be("AQ==");
            await c.ReplyAsync("535 5.7.8 invalid token");
            await c.ExpectAsync("AUTH OAUTHBEARER ");
            await c.ReplyAsync("235 ok");
        });
        port = server.Port;
        await using var session = await ConnectAsync(server);

        (await session.AuthOAuthBearerAsync("me@example.test", _ => ValueTask.FromResult("tok-1"))).Code.Should().Be(535);
        (await session.AuthenticateAsync("me@example.test", _ => ValueTask.FromResult("tok-2"))).Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("OAUTHBEARER", "OAUTHBEARER is preferred over XOAUTH2");
        await server.Completion;
    }

    [Fact]
    public async Task A_failing_token_provider_sends_nothing_and_keeps_the_connection()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH XOAUTH2");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 ok");
        });
        await using var session = await ConnectAsync(server);

        var act = () => session.AuthXOAuth2Async("me@example.test", _ => throw new HttpRequestException("token endpoint down"));

        await act.Should().ThrowAsync<HttpRequestException>();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
        server.Received.Should().Equal("EHLO client.test", "NOOP");
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("XOAUTH2")]
    [InlineData("OAUTHBEARER")]
    public async Task Mechanisms_that_reveal_the_secret_are_refused_without_TLS_before_anything_is_sent(string mechanism)
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync($"AUTH {mechanism}");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 ok");
        });
        await using var session = await ConnectAsync(server, allowCleartext: false);

        Func<Task> act = mechanism switch
        {
            "PLAIN" => () => session.AuthPlainAsync(User, Password),
            "LOGIN" => () => session.AuthLoginAsync(User, Password),
            "XOAUTH2" => () => session.AuthXOAuth2Async(User, _ => ValueTask.FromResult("tok")),
            _ => () => session.AuthenticateAsync(mechanism, Encoding.UTF8.GetBytes("raw"), (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null)),
        };

        (await act.Should().ThrowAsync<InvalidOperationException>()).Which.Message.Should().Contain("AllowCleartextAuthentication");
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await server.Completion;
        server.Received.Should().Equal("EHLO client.test", "NOOP");
    }

    [Theory]
    [InlineData("LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1 SCRAM-SHA-256 DIGEST-MD5", true, "SCRAM-SHA-256")]
    [InlineData("LOGIN PLAIN CRAM-MD5 SCRAM-SHA-1", true, "SCRAM-SHA-1")]
    [InlineData("LOGIN PLAIN CRAM-MD5", false, "CRAM-MD5")]
    [InlineData("LOGIN PLAIN", true, "PLAIN")]
    [InlineData("login", true, "LOGIN")]
    public async Task The_automatic_choice_takes_the_strongest_mechanism_both_sides_support(string offered, bool allowCleartext, string expected)
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH " + offered);
            (await c.ReadLineAsync()).Should().StartWith("AUTH " + expected);
            await c.ReplyAsync("535 5.7.8 no");
        });
        await using var session = await ConnectAsync(server, allowCleartext);

        (await session.AuthenticateAsync(new NetworkCredential(User, Password))).Code.Should().Be(535);
        await server.Completion;
    }

    [Fact]
    public async Task A_pinned_mechanism_is_used_even_when_a_stronger_one_is_offered()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256 LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("535 no");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthenticateAsync(new NetworkCredential(User, Password), new SmtpAuthenticationOptions { Mechanism = "LOGIN" })).Code.Should().Be(535);
        await server.Completion;
    }

    [Fact]
    public async Task No_usable_mechanism_fails_with_AuthenticationError_and_sends_nothing()
    {
        var bytesAfterEhlo = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN LOGIN");
            bytesAfterEhlo = await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server, allowCleartext: false);

        var act = () => session.AuthenticateAsync(new NetworkCredential(User, Password));

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("PLAIN LOGIN").And.Contain("without TLS");
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        bytesAfterEhlo.Should().Be(0);
    }

    [Fact]
    public async Task The_raw_exchange_decodes_challenges_encodes_answers_and_cancels_with_a_star()
    {
        var challenges = new List<string>();
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH X-TEST");
            (await c.ReadLineAsync()).Should().Be("AUTH X-TEST " + B64("hello"));
            await c.ReplyAsync("334 " + B64("challenge-1"));
            Text((await c.ReadLineAsync())!).Should().Be("answer-1");
            await c.ReplyAsync("334 " + B64("challenge-2"));
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync("501 5.7.0 Authentication aborted");
        });
        await using var session = await ConnectAsync(server);

        var reply = await session.AuthenticateAsync("x-test", Encoding.UTF8.GetBytes("hello"), (challenge, _) =>
        {
            challenges.Add(Encoding.UTF8.GetString(challenge.Span));
            // Careful: a null byte[] converts to an empty ReadOnlyMemory, not to a null ReadOnlyMemory?.
            return ValueTask.FromResult(challenges.Count == 1 ? (ReadOnlyMemory<byte>?)Encoding.UTF8.GetBytes("answer-1") : null);
        });

        reply.Code.Should().Be(501);
        challenges.Should().Equal("challenge-1", "challenge-2");
        session.IsAuthenticated.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task An_empty_initial_response_is_sent_as_equals_sign()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH X-EMPTY");
            (await c.ReadLineAsync()).Should().Be("AUTH X-EMPTY =");
            await c.ReplyAsync("235 ok");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthenticateAsync("X-EMPTY", ReadOnlyMemory<byte>.Empty, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null))).Code.Should().Be(235);
        await server.Completion;
    }

    [Fact]
    public async Task An_initial_response_too_long_for_the_AUTH_line_waits_for_an_empty_challenge()
    {
        var big = new byte[10_000];
        Random.Shared.NextBytes(big);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH X-BIG");
            (await c.ReadLineAsync()).Should().Be("AUTH X-BIG");
            await c.ReplyAsync("334 ");
            AuthScriptConnection.FromBase64((await c.ReadLineAsync())!).Should().Equal(big);
            await c.ReplyAsync("235 ok");
        });
        await using var session = await ConnectAsync(server);

        (await session.AuthenticateAsync("X-BIG", big, (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null))).Code.Should().Be(235);
        await server.Completion;
    }

    [Fact]
    public async Task A_challenge_that_is_not_base64_is_cancelled_with_a_star_and_the_session_stays_usable()
    {
        string? answer = null;
        string? next = null;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 Username:");
            answer = await c.ReadLineAsync();
            await c.ReplyAsync("501 5.7.0 Authentication aborted");
            next = await c.ReadLineAsync();
            await c.ReplyAsync("250 2.0.0 OK");
        });
        await using var session = await ConnectAsync(server);

        var act = () => session.AuthLoginAsync(User, Password);

        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("not base64").And.Contain("501");
        error.Reply!.Code.Should().Be(501);
        answer.Should().Be("*");
        session.IsConnected.Should().BeTrue();
        session.IsAuthenticated.Should().BeFalse();
        (await session.NoopAsync()).Code.Should().Be(250);
        next.Should().Be("NOOP");
        await server.Completion;
    }

    [Fact]
    public async Task A_server_that_answers_the_star_with_another_challenge_is_left_closed()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            await c.ReadLineAsync();
            await c.ReplyAsync("334 Username:");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync("334 UGFzc3dvcmQ6");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var act = () => session.AuthLoginAsync(User, Password);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task Cancelling_during_AUTH_closes_the_connection()
    {
        var bytesAfterAuth = -1;
        var userNameRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            await c.ExpectAsync("AUTH LOGIN");
            await c.ReplyAsync("334 VXNlcm5hbWU6");
            await c.ReadLineAsync();
            userNameRead.TrySetResult();
            // No password prompt: the client waits until it is cancelled.
            bytesAfterAuth = await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);
        using var cts = new CancellationTokenSource();

        // Cancelled once the exchange is under way (not by a timer, which a loaded machine can let fire before AUTH is written).
        var auth = session.AuthLoginAsync(User, Password, cts.Token);
        await userNameRead.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        await auth.Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        session.State.Should().Be(SmtpSessionState.Disconnected);
        await server.Completion;
        bytesAfterAuth.Should().Be(0, "the connection is closed, not continued");
    }

    [Fact]
    public async Task Cancelling_inside_a_challenge_handler_closes_the_connection()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH X-SLOW");
            await c.ReadLineAsync();
            await c.ReplyAsync("334 ");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);
        using var cts = new CancellationTokenSource();
        var handlerCalled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        var auth = session.AuthenticateAsync("X-SLOW", null, async (_, token) =>
        {
            handlerCalled.TrySetResult();
            await Task.Delay(Timeout.Infinite, token);
            return null;
        }, cts.Token);
        await handlerCalled.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await cts.CancelAsync();

        await auth.Awaiting(t => t).Should().ThrowAsync<OperationCanceledException>();
        session.IsConnected.Should().BeFalse();
        await server.Completion;
    }

    [Fact]
    public async Task Ntlm_sends_the_platform_messages_or_explains_that_gss_ntlmssp_is_missing()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH NTLM");
            var line = await c.ReadLineAsync();
            if (line is null)
            {
                return; // the platform has no NTLM: the client closed without sending AUTH
            }

            line.Should().StartWith("AUTH NTLM ");
            var negotiate = AuthScriptConnection.FromBase64(line[10..]);
            Encoding.ASCII.GetString(negotiate, 0, 8).Should().Be("NTLMSSP\0");
            BitConverter.ToInt32(negotiate, 8).Should().Be(1);
            await c.ReplyAsync("334 " + Convert.ToBase64String(NtlmChallenge()));
            var authenticate = AuthScriptConnection.FromBase64((await c.ReadLineAsync())!);
            BitConverter.ToInt32(authenticate, 8).Should().Be(3);
            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        await using var session = await ConnectAsync(server, allowCleartext: false);

        try
        {
            var reply = await session.AuthNtlmAsync(new NetworkCredential(User, Password));
            reply.Code.Should().Be(235);
            session.AuthenticatedMechanism.Should().Be("NTLM");
            output.WriteLine("NTLM ran through the platform (gss-ntlmssp present).");
        }
        catch (SmtpException ex)
        {
            output.WriteLine("NTLM is unavailable here: " + ex.Message);
            ex.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
            ex.Message.Should().Contain("apt-get install gss-ntlmssp");
            session.IsConnected.Should().BeFalse();
        }

        await server.Completion;
    }

    [Fact]
    public async Task A_disconnect_forgets_the_authentication()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH PLAIN");
            await c.ReadLineAsync();
            await c.ReplyAsync("235 ok");
            await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);
        await session.AuthPlainAsync(User, Password);
        session.IsAuthenticated.Should().BeTrue();

        await session.DisconnectAsync();

        session.IsAuthenticated.Should().BeFalse();
    }
}
