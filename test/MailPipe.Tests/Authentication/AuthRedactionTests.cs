using System.Net;
using System.Security.Cryptography;
using System.Text;
using static MailPipe.Tests.Authentication.AuthTestData;

namespace MailPipe.Tests.Authentication;

/// <summary>With Trace logging on, no mechanism lets the password, the token, or anything the client sent during AUTH reach the log.</summary>
public sealed class AuthRedactionTests
{
    private const string Token = "ya29.Secret-Token-Value";

    public static TheoryData<string> Mechanisms => new()
    {
        "PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256", "XOAUTH2", "OAUTHBEARER", "XOAUTH2-error", "OAUTHBEARER-error",
    };

    [Theory]
    [MemberData(nameof(Mechanisms))]
    public async Task Secrets_never_reach_a_Trace_log(string mechanism)
    {
        var name = mechanism.Replace("-error", string.Empty, StringComparison.Ordinal);
        var hash = name == "SCRAM-SHA-1" ? HashAlgorithmName.SHA1 : HashAlgorithmName.SHA256;
        var scram = new TestScramServer(hash, User, Password);
        var authLines = new List<string>();
        var serverSaid = new List<string>();
        await using var server = new AuthScriptServer(async c =>
        {
            async Task Challenge(string base64)
            {
                serverSaid.Add(base64);
                await c.ReplyAsync("334 " + base64);
            }

            async Task<string?> Read()
            {
                var line = await c.ReadLineAsync();
                if (line is not null)
                {
                    authLines.Add(line);
                }

                return line;
            }

            await c.GreetAndEhloAsync($"AUTH {name}");
            var first = await Read();
            if (first is null)
            {
                return; // NTLM without platform support
            }

            switch (mechanism)
            {
                case "PLAIN" or "XOAUTH2" or "OAUTHBEARER":
                    break;
                case "LOGIN":
                    await Challenge("VXNlcm5hbWU6");
                    await Read();
                    await Challenge("UGFzc3dvcmQ6");
                    await Read();
                    break;
                case "CRAM-MD5":
                    await Challenge(B64("<1896.697170952@postoffice.reston.mci.net>"));
                    await Read();
                    break;
                case "NTLM":
                    await Challenge(Convert.ToBase64String(NtlmChallenge()));
                    await Read();
                    break;
                case "SCRAM-SHA-1" or "SCRAM-SHA-256":
                    await Challenge(B64(scram.ServerFirst(Text(first[(name.Length + 6)..]))));
                    var serverFinal = scram.ServerFinal(Text((await Read())!))!;
                    await Challenge(B64(serverFinal));
                    await Read();
                    break;
                default: // the error JSON of RFC 7628 §3.2.2
                    await Challenge(B64("{\"status\":\"invalid_token\"}"));
                    await Read();
                    await c.ReplyAsync("535 5.7.8 token rejected");
                    return;
            }

            await c.ReplyAsync("235 2.7.0 Authentication successful");
        });
        var log = new AuthTestLoggerFactory();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, LoggerFactory = log, ReceiveTimeout = TimeSpan.FromSeconds(15) });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");
        var credential = new NetworkCredential(User, Password);
        var tokenProvider = (CancellationToken _) => ValueTask.FromResult(Token);

        SmtpReply? reply = null;
        try
        {
            reply = name switch
            {
                "XOAUTH2" or "OAUTHBEARER" => await session.AuthenticateAsync(User, tokenProvider, new SmtpAuthenticationOptions { Mechanism = name }),
                _ => await session.AuthenticateAsync(credential, new SmtpAuthenticationOptions { Mechanism = name }),
            };
        }
        catch (SmtpException ex) when (name == "NTLM" && ex.Message.Contains("gss-ntlmssp", StringComparison.Ordinal))
        {
            // NTLM is not available on this machine: the refusal path is checked for leaks just the same.
        }

        await server.Completion;
        if (reply is not null)
        {
            reply.Code.Should().Be(mechanism.EndsWith("-error", StringComparison.Ordinal) ? 535 : 235);
        }

        var text = log.Text;
        text.Should().Contain("C: EHLO client.test", "the transcript is on");
        string[] secrets =
        [
            Password, Convert.ToBase64String(Encoding.UTF8.GetBytes(Password)), Token, Convert.ToBase64String(Encoding.UTF8.GetBytes(Token)),
        ];
        foreach (var secret in secrets.Concat(authLines.Select(l => l.StartsWith("AUTH ", StringComparison.Ordinal) ? l[Math.Min(l.Length, name.Length + 6)..] : l)).Where(s => s.Length > 2))
        {
            text.Should().NotContain(secret);
        }

        foreach (var challenge in serverSaid.Where(s => s.Length > 0))
        {
            text.Should().NotContain(challenge);
        }

        if (authLines.Count > 0)
        {
            text.Should().Contain(authLines[0].Length > name.Length + 5 ? $"C: AUTH {name} <redacted>" : $"C: AUTH {name}");
        }

        if (serverSaid.Count > 0)
        {
            text.Should().Contain("S: 334 <redacted>");
            text.Should().Contain("C: <redacted>");
        }
    }

    [Fact]
    public async Task A_seed_style_raw_AUTH_LOGIN_through_SendCommandAsync_is_redacted_too()
    {
        var userLine = B64(User);
        var passwordLine = B64(Password);
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("AUTH LOGIN");
            (await c.ReadLineAsync()).Should().Be("AUTH LOGIN");
            await c.ReplyAsync("334 VXNlcm5hbWU6");
            (await c.ReadLineAsync()).Should().Be(userLine);
            await c.ReplyAsync("334 UGFzc3dvcmQ6");
            (await c.ReadLineAsync()).Should().Be(passwordLine);
            await c.ReplyAsync("235 2.7.0 Authentication successful");
            await c.ExpectAsync("NOOP");
            await c.ReplyAsync("250 2.0.0 Ok");
        });
        var log = new AuthTestLoggerFactory();
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = log });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        await session.SendCommandAsync("AUTH LOGIN");
        (await session.ReceiveReplyAsync()).Code.Should().Be(334);
        await session.SendCommandAsync(userLine);
        (await session.ReceiveReplyAsync()).Code.Should().Be(334);
        await session.SendCommandAsync(passwordLine);
        (await session.ReceiveReplyAsync()).Code.Should().Be(235);
        await session.SendCommandAsync("NOOP");
        (await session.ReceiveReplyAsync()).Code.Should().Be(250);
        await server.Completion;

        var text = log.Text;
        text.Should().NotContain(passwordLine).And.NotContain(Password).And.NotContain("UGFzc3dvcmQ6");
        text.Should().Contain("C: AUTH LOGIN").And.Contain("S: 334 <redacted>").And.Contain("C: <redacted>");
        text.Should().Contain("S: 235 2.7.0 Authentication successful", "the exchange is over: replies show again");
        text.Should().Contain("C: NOOP").And.Contain("S: 250 2.0.0 Ok");
    }
}
