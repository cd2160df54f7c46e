using System.Net;
using System.Security.Cryptography;
using System.Text;
using MailPipe.IntegrationTests.Support;
using static MailPipe.IntegrationTests.Tls.TlsTestSupport;

namespace MailPipe.IntegrationTests.Authentication;

/// <summary>AUTH (RFC 4954) against the real Postfix + Cyrus SASL and aiosmtpd, user testuser / Test-Pass-123.</summary>
public sealed class AuthIntegrationTests
{
    public static TheoryData<string> PostfixMechanisms => new() { "PLAIN", "LOGIN", "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256" };

    public static TheoryData<string> ChallengeResponseMechanisms => new() { "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256" };

    private static NetworkCredential Credential(string password = TestServers.Password) => new(TestServers.User, password);

    /// <summary>The typed per-mechanism methods (the seed's AuthPlain, AuthLogin, …).</summary>
    private static Task<SmtpReply> AuthenticateWithAsync(AsyncSmtpSession session, string mechanism, string password = TestServers.Password) => mechanism switch
    {
        "PLAIN" => session.AuthPlainAsync(TestServers.User, password),
        "LOGIN" => session.AuthLoginAsync(TestServers.User, password),
        "CRAM-MD5" => session.AuthCramMd5Async(TestServers.User, password),
        "NTLM" => session.AuthNtlmAsync(Credential(password)),
        "SCRAM-SHA-1" => session.AuthScramAsync(TestServers.User, password, HashAlgorithmName.SHA1),
        "SCRAM-SHA-256" => session.AuthScramAsync(TestServers.User, password, HashAlgorithmName.SHA256),
        _ => throw new ArgumentOutOfRangeException(nameof(mechanism)),
    };

    private static async Task<AsyncSmtpSession> SubmissionSessionAsync()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.StartTlsRequired, EhloDomain)).Code.Should().Be(250);
        return session;
    }

    [Theory]
    [MemberData(nameof(PostfixMechanisms))]
    public async Task Each_mechanism_authenticates_on_the_submission_port_and_the_message_arrives(string mechanism)
    {
        var recipient = TestServers.UniqueRecipient("auth-" + mechanism.ToLowerInvariant());
        await using var session = await SubmissionSessionAsync();
        session.Capabilities.AuthenticationMechanisms.Should().Contain(mechanism);

        var reply = await AuthenticateWithAsync(session, mechanism);

        reply.Code.Should().Be(235, reply.ToString());
        session.AuthenticatedMechanism.Should().Be(mechanism);
        await SendTestMessageAsync(session, recipient, "AUTH " + mechanism);
        await session.QuitAsync();
        var stored = await WaitForPostfixAsync(recipient);
        stored.Should().Contain("with ESMTPSA").And.Contain("Subject: AUTH " + mechanism);
    }

    [Theory]
    [MemberData(nameof(PostfixMechanisms))]
    public async Task The_pinned_typed_credential_API_authenticates_with_each_mechanism(string mechanism)
    {
        await using var session = await SubmissionSessionAsync();

        var reply = await session.AuthenticateAsync(Credential(), new SmtpAuthenticationOptions { Mechanism = mechanism });

        reply.Code.Should().Be(235, reply.ToString());
        session.AuthenticatedMechanism.Should().Be(mechanism);
        await session.QuitAsync();
    }

    [Theory]
    [MemberData(nameof(ChallengeResponseMechanisms))]
    public async Task Challenge_response_mechanisms_work_without_TLS_on_port_2525(string mechanism)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, EhloDomain)).Code.Should().Be(250);

        var reply = await AuthenticateWithAsync(session, mechanism);

        reply.Code.Should().Be(235, reply.ToString());
        await session.QuitAsync();
    }

    [Theory]
    [MemberData(nameof(PostfixMechanisms))]
    public async Task A_wrong_password_is_a_returned_535(string mechanism)
    {
        await using var session = await SubmissionSessionAsync();

        var reply = await AuthenticateWithAsync(session, mechanism, "Wrong-Pass-456");

        reply.Code.Should().Be(535, reply.ToString());
        session.IsAuthenticated.Should().BeFalse();
        session.IsConnected.Should().BeTrue();
        (await session.NoopAsync()).Code.Should().Be(250);
        await session.QuitAsync();
    }

    [Fact]
    public async Task The_automatic_choice_on_Postfix_is_SCRAM_SHA_256()
    {
        await using var session = await SubmissionSessionAsync();

        var reply = await session.AuthenticateAsync(Credential());

        reply.Code.Should().Be(235);
        session.AuthenticatedMechanism.Should().Be("SCRAM-SHA-256");
        await session.QuitAsync();
    }

    [Fact]
    public async Task The_submission_port_refuses_AUTH_before_STARTTLS_with_530_and_accepts_it_after()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var recipient = TestServers.UniqueRecipient("auth-5870");
        await using var session = NewSession(allowCleartext: true);
        (await session.ConnectAsync(TestServers.Host, TestServers.PostfixSubmissionPort, SmtpTlsMode.None, EhloDomain)).Code.Should().Be(250);
        session.Capabilities.AuthenticationMechanisms.Should().BeEmpty("AUTH is advertised only after STARTTLS here");

        // Raw AUTH goes out as asked and the server refuses it; a typed AUTH method checks the advertised list first.
        var before = await session.AuthenticateAsync(
            "PLAIN", Encoding.UTF8.GetBytes($"\0{TestServers.User}\0{TestServers.Password}"), static (_, _) => ValueTask.FromResult<ReadOnlyMemory<byte>?>(null));

        before.Code.Should().Be(530, before.ToString());
        session.IsConnected.Should().BeTrue();
        (await session.StartTlsAsync()).Code.Should().Be(220);
        (await session.EhloAsync(EhloDomain)).Code.Should().Be(250);
        session.Capabilities.AuthenticationMechanisms.Should().Contain("PLAIN");
        (await session.AuthPlainAsync(TestServers.User, TestServers.Password)).Code.Should().Be(235);
        await SendTestMessageAsync(session, recipient, "after STARTTLS");
        await session.QuitAsync();
        await WaitForPostfixAsync(recipient);
    }

    [Fact]
    public async Task PLAIN_is_refused_locally_without_TLS_unless_allowed()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.None, EhloDomain);

        var act = () => session.AuthPlainAsync(TestServers.User, TestServers.Password);

        await act.Should().ThrowAsync<InvalidOperationException>();
        session.IsConnected.Should().BeTrue();
        await session.QuitAsync();
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    public async Task Aiosmtpd_accepts_PLAIN_and_LOGIN_over_STARTTLS_and_stores_the_message(string mechanism)
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        var recipient = TestServers.UniqueRecipient("aio-" + mechanism.ToLowerInvariant());
        await using var session = NewSession();
        (await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort, SmtpTlsMode.StartTlsRequired, EhloDomain)).Code.Should().Be(250);

        var reply = await AuthenticateWithAsync(session, mechanism);

        reply.Code.Should().Be(235, reply.ToString());
        await SendTestMessageAsync(session, recipient, "aiosmtpd " + mechanism);
        await session.QuitAsync();
        var stored = await WaitForAiosmtpdAsync(recipient);
        stored.GetProperty("auth_user").GetString().Should().Be(TestServers.User);
        stored.GetProperty("tls").GetBoolean().Should().BeTrue();
    }

    [Fact]
    public async Task Aiosmtpd_returns_535_for_a_wrong_password()
    {
        TestServers.RequireListening(TestServers.AiosmtpdPort);
        await using var session = NewSession();
        await session.ConnectAsync(TestServers.Host, TestServers.AiosmtpdPort, SmtpTlsMode.StartTlsRequired, EhloDomain);

        var reply = await session.AuthenticateAsync(Credential("Wrong-Pass-456"));

        reply.Code.Should().Be(535, reply.ToString());
        session.AuthenticatedMechanism.Should().BeNull();
        await session.QuitAsync();
    }
}
