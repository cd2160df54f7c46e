using System.Net;
using System.Security.Cryptography;
using System.Text;
using MailPipe.Authentication;
using MailPipe.Tests.Pooling;
using MailPipe.Tests.Support;
using Xunit.Abstractions;
using static MailPipe.Tests.Authentication.AuthTestData;

namespace MailPipe.Tests.Authentication;

/// <summary>
/// A built-in mechanism that cannot answer a challenge (an empty CRAM-MD5 challenge, a malformed SCRAM server-first
/// message, a SCRAM server error, an NTLM challenge the platform refuses) cancels the exchange with '*' (RFC 4954 §4)
/// as a challenge that is not base64 is: AuthenticationError with the server's answer, the session still usable.
/// Before, each closed the connection in the middle of the exchange. A SCRAM server that fails mutual authentication
/// (a wrong server signature) still closes it: that server is not trusted with another line.
/// </summary>
public sealed class MechanismCancelTests(ITestOutputHelper output)
{
    private static async Task<AsyncSmtpSession> ConnectAsync(AuthScriptServer server)
    {
        var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, ReceiveTimeout = TimeSpan.FromSeconds(15) });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        return session;
    }

    /// <summary>After the answer to '*', a NOOP: the session goes on.</summary>
    private static async Task AnswerStarThenNoopAsync(AuthScriptConnection c, string answer = "501 5.7.0 Authentication aborted")
    {
        (await c.ReadLineAsync()).Should().Be("*");
        await c.ReplyAsync(answer);
        if (answer.StartsWith("421", StringComparison.Ordinal))
        {
            await c.DrainAsync();
            return;
        }

        (await c.ReadLineAsync()).Should().Be("NOOP");
        await c.ReplyAsync("250 2.0.0 OK");
    }

    private static async Task ShouldBeCancelledAndUsableAsync(AsyncSmtpSession session, Func<Task> act, string because)
    {
        var error = (await act.Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain(because).And.Contain("cancelled with '*'");
        error.Reply!.Code.Should().Be(501);
        error.IsTransient.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        session.IsAuthenticated.Should().BeFalse();
        (await session.NoopAsync()).Code.Should().Be(250);
    }

    /// <summary>CRAM-MD5 has nothing to sign in an empty challenge (RFC 2195 §2): cancelled; 4yz is transient; 421 closes.</summary>
    [Theory]
    [InlineData("501 5.7.0 Authentication aborted", false, true)]
    [InlineData("454 4.7.0 Temporary authentication failure", true, true)]
    [InlineData("421 4.3.2 Shutting down", true, false)]
    public async Task An_empty_CRAM_MD5_challenge_is_cancelled_with_a_star(string answer, bool transient, bool connected)
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH CRAM-MD5");
            (await c.ReadLineAsync()).Should().Be("AUTH CRAM-MD5");
            await c.ReplyAsync("334 ");
            await AnswerStarThenNoopAsync(c, answer);
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthCramMd5Async(User, Password)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("empty challenge").And.Contain("cancelled with '*'");
        error.Reply!.Code.Should().Be(int.Parse(answer[..3], System.Globalization.CultureInfo.InvariantCulture));
        error.IsTransient.Should().Be(transient);
        session.IsConnected.Should().Be(connected);
        if (connected)
        {
            (await session.NoopAsync()).Code.Should().Be(250);
        }

        await server.Completion;
    }

    /// <summary>A malformed SCRAM server-first message (RFC 5802 §5.1, §7); <c>{0}</c> is the client's nonce.</summary>
    [Theory]
    [InlineData("r=someone-else,s=c2FsdA==,i=4096", "does not extend the client's")]
    [InlineData("r={0},s=c2FsdA==,i=4096", "does not extend the client's")]
    [InlineData("r={0}srv,i=4096", "lacks r=, s= or i=")]
    [InlineData("r={0}srv,s=c2FsdA==", "lacks r=, s= or i=")]
    [InlineData("s=c2FsdA==,i=4096", "lacks r=, s= or i=")]
    [InlineData("r={0}srv,s=c2FsdA==,i=0", "iteration count")]
    [InlineData("r={0}srv,s=c2FsdA==,i=100001", "iteration count")]
    [InlineData("r={0}srv,s=c2FsdA==,i=-1", "iteration count")]
    [InlineData("r={0}srv,s=c2FsdA==,i=lots", "iteration count")]
    [InlineData("r={0}srv,s=not*base64,i=4096", "salt is not base64")]
    [InlineData("r={0}srv,s=c2FsdA==,i=4096,x", "malformed")]
    [InlineData("m=ext,r={0}srv,s=c2FsdA==,i=4096", "mandatory extension")]
    [InlineData("e=other-error", "reported an error")]
    public async Task A_malformed_SCRAM_server_first_message_is_cancelled_with_a_star(string serverFirst, string because)
    {
        SaslScram.MaxIterations.Should().BeLessThan(100001, "the case above must be out of range");
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256");
            var line = await c.ExpectAsync("AUTH SCRAM-SHA-256 ");
            var nonce = Text(line[19..]).Split(",r=")[1];
            await c.ReplyAsync("334 " + B64(string.Format(System.Globalization.CultureInfo.InvariantCulture, serverFirst, nonce)));
            await AnswerStarThenNoopAsync(c);
        });
        await using var session = await ConnectAsync(server);

        await ShouldBeCancelledAndUsableAsync(session, () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256), because);
        await server.Completion;
    }

    [Fact]
    public async Task A_SCRAM_server_first_message_that_is_not_UTF8_is_cancelled_with_a_star()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-1");
            await c.ExpectAsync("AUTH SCRAM-SHA-1 ");
            await c.ReplyAsync("334 " + Convert.ToBase64String([(byte)'r', (byte)'=', 0xFF, 0xFE]));
            await AnswerStarThenNoopAsync(c);
        });
        await using var session = await ConnectAsync(server);

        await ShouldBeCancelledAndUsableAsync(session, () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA1), "not UTF-8");
        await server.Completion;
    }

    /// <summary>A server-final message with <c>e=</c> (RFC 5802 §7: the server refuses) ends like a refusal: cancelled, not a broken connection.</summary>
    [Fact]
    public async Task A_SCRAM_server_error_in_the_server_final_message_is_cancelled_with_a_star()
    {
        var scram = new TestScramServer(HashAlgorithmName.SHA256, User, Password);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256");
            var line = await c.ExpectAsync("AUTH SCRAM-SHA-256 ");
            await c.ReplyAsync("334 " + B64(scram.ServerFirst(Text(line[19..]))));
            await c.ReadLineAsync();
            await c.ReplyAsync("334 " + B64("e=invalid-proof"));
            await AnswerStarThenNoopAsync(c);
        });
        await using var session = await ConnectAsync(server);

        await ShouldBeCancelledAndUsableAsync(session, () => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256), "invalid-proof");
        await server.Completion;
    }

    /// <summary>
    /// A wrong server signature is not cancelled: the server proved nothing (RFC 5802 §5.1), so no '*' and no later
    /// command goes to it; the connection is closed as before.
    /// </summary>
    [Theory]
    [InlineData("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("v=not base64")]
    [InlineData("x=no-verifier")]
    public async Task A_wrong_SCRAM_server_signature_still_closes_without_a_star(string serverFinal)
    {
        var scram = new TestScramServer(HashAlgorithmName.SHA256, User, Password);
        var linesAfterServerFinal = -1;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH SCRAM-SHA-256");
            var line = await c.ExpectAsync("AUTH SCRAM-SHA-256 ");
            await c.ReplyAsync("334 " + B64(scram.ServerFirst(Text(line[19..]))));
            await c.ReadLineAsync();
            await c.ReplyAsync("334 " + B64(serverFinal));
            linesAfterServerFinal = await c.DrainAsync();
        });
        await using var session = await ConnectAsync(server);

        var error = (await FluentActions.Awaiting(() => session.AuthScramAsync(User, Password, HashAlgorithmName.SHA256)).Should().ThrowAsync<SmtpException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("signature is wrong");
        error.Reply.Should().BeNull();
        session.IsConnected.Should().BeFalse();
        await server.Completion;
        linesAfterServerFinal.Should().Be(0, "nothing, not even '*', goes to a server that failed mutual authentication");
    }

    /// <summary>
    /// An NTLM challenge the platform cannot answer (not an NTLM type-2 message): cancelled. Where the platform has no
    /// NTLM at all (no gss-ntlmssp) nothing is sent and this path cannot be reached; the test says so.
    /// </summary>
    [Fact]
    public async Task An_NTLM_challenge_the_platform_refuses_is_cancelled_with_a_star()
    {
        using (var probe = new SaslNtlm(new NetworkCredential(User, Password), "SMTPSVC/localhost"))
        {
            if (!probe.TryStart())
            {
                output.WriteLine("NTLM is unavailable on this platform (no gss-ntlmssp): the challenge path cannot run here.");
                return;
            }
        }

        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH NTLM");
            await c.ExpectAsync("AUTH NTLM ");
            await c.ReplyAsync("334 " + Convert.ToBase64String(Encoding.ASCII.GetBytes("NTLMSSP\0 is not what follows")));
            await AnswerStarThenNoopAsync(c);
        });
        await using var session = await ConnectAsync(server);

        await ShouldBeCancelledAndUsableAsync(session, () => session.AuthNtlmAsync(new NetworkCredential(User, Password)), "could not answer the server's challenge");
        await server.Completion;
    }

    /// <summary>The pool: a connection whose CRAM-MD5 was cancelled is not lent; the message is NotSent with AuthenticationError, transient when the answer to '*' is 4yz.</summary>
    [Theory]
    [InlineData("454 4.7.0 Temporary authentication failure", true)]
    [InlineData("501 5.7.0 Authentication aborted", false)]
    public async Task The_pool_reports_a_cancelled_mechanism_as_NotSent_with_AuthenticationError(string answer, bool transient)
    {
        string? after = null;
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH CRAM-MD5");
            (await c.ReadLineAsync()).Should().Be("AUTH CRAM-MD5");
            await c.ReplyAsync("334 ");
            (await c.ReadLineAsync()).Should().Be("*");
            await c.ReplyAsync(answer);
            after = await c.ReadLineAsync();
            if (after is not null)
            {
                await c.ReplyAsync("221 2.0.0 bye");
            }
        });
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Credentials = new NetworkCredential(User, Password);
        options.Session = new SmtpSessionOptions { AllowCleartextAuthentication = true };
        var sender = new SmtpSender(options);
        try
        {
            var result = await sender.SendAsync(PoolTestMessages.Create("auth", 0).Message).Safe();
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            var error = result.Exception.Should().BeOfType<SmtpException>().Which;
            error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
            error.Reply!.Code.Should().Be(int.Parse(answer[..3], System.Globalization.CultureInfo.InvariantCulture));
            error.IsTransient.Should().Be(transient);
            result.IsTransientFailure.Should().Be(transient);
        }
        finally
        {
            await sender.DisposeAsync().AsTask().Safe();
        }

        await server.Completion;
        after.Should().BeOneOf([null, "QUIT"], "no MAIL on a connection whose AUTH failed");
    }
}
