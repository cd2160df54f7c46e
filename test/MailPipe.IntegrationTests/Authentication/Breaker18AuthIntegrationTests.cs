using System.Net;
using System.Security.Cryptography;
using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Authentication;

/// <summary>A peer's AUTH probes against Postfix + Cyrus SASL (breaker18): user names the server does not know, ASCII and UTF-8.</summary>
public sealed class Breaker18AuthIntegrationTests
{
    public static TheoryData<string, string> UnknownUsers()
    {
        var data = new TheoryData<string, string>();
        foreach (var mechanism in new[] { "PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256" })
        {
            data.Add(mechanism, "nobody-here");
            data.Add(mechanism, "jürgen-ümlaut");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(UnknownUsers))]
    public async Task An_unknown_user_is_a_returned_negative_reply_and_the_session_stays_usable(string mechanism, string user)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, EhloDomain)).Code.Should().Be(250);
        const string password = "Some-Pass-789";

        var reply = await (mechanism switch
        {
            "PLAIN" => session.AuthPlainAsync(user, password),
            "LOGIN" => session.AuthLoginAsync(user, password),
            "CRAM-MD5" => session.AuthCramMd5Async(user, password),
            "NTLM" => session.AuthNtlmAsync(new NetworkCredential(user, password)),
            "SCRAM-SHA-1" => session.AuthScramAsync(user, password, HashAlgorithmName.SHA1),
            _ => session.AuthScramAsync(user, password, HashAlgorithmName.SHA256),
        });

        reply.IsPermanentNegative.Should().BeTrue(reply.ToString());
        session.IsAuthenticated.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        (await session.AuthenticateAsync(new NetworkCredential(TestServers.User, TestServers.Password))).Code.Should().Be(235);
        await session.QuitAsync();
    }
}
