using System.Net;
using MailPipe.Authentication;

namespace MailPipe.Tests.Authentication;

/// <summary>Which mechanism may run on a connection and which one the automatic choice takes (RFC 4954), without a server.</summary>
public class SaslPolicyTests
{
    private static readonly NetworkCredential Credential = new("user", "secret");

    [Fact]
    public void The_automatic_password_choice_takes_the_strongest_offered_mechanism()
    {
        var policy = Policy("PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256", encrypted: true);

        using var chosen = policy.ChoosePassword(Credential, new SmtpAuthenticationOptions(), out var pinned);

        chosen!.Name.Should().Be("SCRAM-SHA-256");
        pinned.Should().BeFalse();
    }

    [Fact]
    public void Without_TLS_PLAIN_and_LOGIN_are_skipped_and_refused()
    {
        var policy = Policy("PLAIN LOGIN", encrypted: false);

        policy.ChoosePassword(Credential, new SmtpAuthenticationOptions(), out _).Should().BeNull();
        using var plain = new SaslPlain("user", "secret", authorizationId: null);
        policy.Refusal(plain).Should().Contain("without TLS").And.Contain("nothing was sent");
        policy.NoCommonMechanism(SmtpAuthenticationMechanisms.PasswordPreferenceOrder).Should().Contain("offers PLAIN LOGIN").And.Contain("not used without TLS");
    }

    [Fact]
    public void Allowing_cleartext_lets_PLAIN_run_without_TLS()
    {
        var policy = Policy("PLAIN", encrypted: false, allowCleartext: true);

        using var chosen = policy.ChoosePassword(Credential, new SmtpAuthenticationOptions(), out _);

        chosen!.Name.Should().Be("PLAIN");
        policy.Refusal(chosen).Should().BeNull();
    }

    [Fact]
    public void A_pinned_mechanism_is_taken_as_named_and_must_be_a_password_mechanism()
    {
        var policy = Policy("PLAIN SCRAM-SHA-256", encrypted: true);

        using var chosen = policy.ChoosePassword(Credential, new SmtpAuthenticationOptions { Mechanism = "plain" }, out var pinned);
        chosen!.Name.Should().Be("PLAIN");
        pinned.Should().BeTrue();

        var act = () => policy.ChoosePassword(Credential, new SmtpAuthenticationOptions { Mechanism = "XOAUTH2" }, out _);
        act.Should().Throw<ArgumentException>().WithParameterName("options");
    }

    [Fact]
    public void A_mechanism_the_server_does_not_list_is_refused_before_anything_is_written()
    {
        var policy = Policy("PLAIN", encrypted: true);

        using var cram = new SaslCramMd5("user", "secret");

        policy.Refusal(cram).Should().Contain("advertises only AUTH PLAIN");
    }

    [Fact]
    public void The_token_choice_prefers_OAUTHBEARER_and_checks_a_pinned_name()
    {
        Policy("XOAUTH2 OAUTHBEARER", encrypted: true).ChooseToken(null, "options").Should().Be("OAUTHBEARER");
        Policy("XOAUTH2", encrypted: true).ChooseToken(null, "options").Should().Be("XOAUTH2");
        Policy("XOAUTH2", encrypted: false).ChooseToken(null, "options").Should().BeNull();

        var act = () => Policy("PLAIN", encrypted: true).ChooseToken("PLAIN", "options");
        act.Should().Throw<ArgumentException>().WithParameterName("options");
    }

    [Fact]
    public void NTLM_targets_the_server_name_unless_the_caller_names_one()
    {
        Policy("NTLM", encrypted: true).NtlmTargetName(null).Should().Be("SMTPSVC/mail.example.org");
        Policy("NTLM", encrypted: true).NtlmTargetName("SMTP/other").Should().Be("SMTP/other");
        new SaslPolicy(SmtpCapabilities.None, false, false, serverName: null, port: null).NtlmTargetName(null).Should().Be("SMTPSVC/localhost");
    }

    private static SaslPolicy Policy(string offered, bool encrypted, bool allowCleartext = false) =>
        new(SmtpCapabilities.FromEhloReply(new SmtpReply(250, ["mail.example.org", "AUTH " + offered])), encrypted, allowCleartext, "mail.example.org", 587);
}
