using System.Security.Cryptography;
using System.Text;
using MailPipe.Authentication;

namespace MailPipe.Tests.Authentication;

/// <summary>The mechanisms against the RFCs' own examples.</summary>
public sealed class SaslVectorTests
{
    private static string Text(ReadOnlyMemory<byte>? bytes) => Encoding.UTF8.GetString(bytes!.Value.Span);

    [Fact]
    public void CramMd5_matches_the_RFC_2195_example()
    {
        var response = SaslCramMd5.Compute("tim", "tanstaaftanstaaf"u8, "<1896.697170952@postoffice.reston.mci.net>"u8);

        Encoding.ASCII.GetString(response).Should().Be("tim b913a602c7eda7a495b4e6e7334d3890");
        Convert.ToBase64String(response).Should().Be("dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw");
    }

    [Fact]
    public async Task ScramSha1_matches_the_RFC_5802_example()
    {
        using var scram = new SaslScram(HashAlgorithmName.SHA1, "user", "pencil", null, clientNonce: "fyko+d2lbbFgONRv9qkxdawL");

        Text(await scram.GetInitialResponseAsync(default)).Should().Be("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        var final = await scram.RespondAsync(Encoding.UTF8.GetBytes("r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"), default);
        Text(final).Should().Be("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=");
        scram.CheckSuccess().Should().NotBeNull("the server's signature has not been seen yet");
        var empty = await scram.RespondAsync(Encoding.UTF8.GetBytes("v=rmF9pqV8S7suAoZWja4dJRkFsKQ="), default);
        empty!.Value.Length.Should().Be(0);
        scram.CheckSuccess().Should().BeNull();
    }

    [Fact]
    public async Task ScramSha256_matches_the_RFC_7677_example()
    {
        using var scram = new SaslScram(HashAlgorithmName.SHA256, "user", "pencil", null, clientNonce: "rOprNGfwEbeRWgbNEkqO");

        Text(await scram.GetInitialResponseAsync(default)).Should().Be("n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        var final = await scram.RespondAsync(Encoding.UTF8.GetBytes("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"), default);
        Text(final).Should().Be("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        await scram.RespondAsync(Encoding.UTF8.GetBytes("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), default);
        scram.CheckSuccess().Should().BeNull();
    }

    [Fact]
    public async Task Scram_refuses_a_wrong_server_signature()
    {
        using var scram = new SaslScram(HashAlgorithmName.SHA256, "user", "pencil", null, clientNonce: "rOprNGfwEbeRWgbNEkqO");
        await scram.GetInitialResponseAsync(default);
        await scram.RespondAsync(Encoding.UTF8.GetBytes("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"), default);

        var act = async () => await scram.RespondAsync(Encoding.UTF8.GetBytes("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), default);

        (await act.Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
    }

    [Theory]
    [InlineData("r=other-nonce,s=QSXCR+Q6sek8bf92,i=4096")] // does not extend the client nonce
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=0")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=99999999")]
    [InlineData("m=ext,r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4096")]
    [InlineData("r=fyko+d2lbbFgONRv9qkxdawLx,i=4096")]
    public async Task Scram_cancels_a_bad_server_first_message(string serverFirst)
    {
        using var scram = new SaslScram(HashAlgorithmName.SHA1, "user", "pencil", null, clientNonce: "fyko+d2lbbFgONRv9qkxdawL");
        await scram.GetInitialResponseAsync(default);

        var answer = await scram.RespondAsync(Encoding.UTF8.GetBytes(serverFirst), default);

        answer.Should().BeNull("'*' cancels the exchange (RFC 4954 §4)");
        scram.CancelReason.Should().StartWith("AUTH SCRAM-SHA-1: ");
        scram.CheckSuccess().Should().NotBeNull("a 235 after that would prove nothing");
    }

    [Fact]
    public async Task Scram_escapes_the_user_name_and_sends_the_authorization_identity()
    {
        using var scram = new SaslScram(HashAlgorithmName.SHA256, "a=b,c", "pencil", "admin", clientNonce: "abc");

        Text(await scram.GetInitialResponseAsync(default)).Should().Be("n,a=admin,n=a=3Db=2Cc,r=abc");
    }

    [Theory]
    [InlineData("user", "user")]
    [InlineData("I\u00ADX", "IX")] // soft hyphen is mapped to nothing (RFC 4013 §3 example 1)
    [InlineData("\u00AA", "a")] // NFKC (example 3)
    [InlineData("\u2168", "IX")] // NFKC (example 5)
    [InlineData("a\u00A0b", "a b")] // non-ASCII space
    public void SaslPrep_maps_and_normalises(string input, string expected) =>
        SaslPrep.Prepare(input, "value").Should().Be(expected);

    [Theory]
    [InlineData("\u0007")] // control (RFC 4013 §3 example 6)
    [InlineData("a\uE000")] // private use
    [InlineData("")]
    public void SaslPrep_refuses_prohibited_input(string input) =>
        FluentActions.Invoking(() => SaslPrep.Prepare(input, "value")).Should().Throw<ArgumentException>();

    [Fact]
    public async Task Plain_is_authzid_NUL_user_NUL_password()
    {
        using var plain = new SaslPlain("tim", "tanstaaftanstaaf", "admin");

        Text(await plain.GetInitialResponseAsync(default)).Should().Be("admin\0tim\0tanstaaftanstaaf");
    }

    [Fact]
    public async Task XOAuth2_and_OAuthBearer_initial_responses_follow_their_specifications()
    {
        using var xoauth2 = new SaslOAuth("XOAUTH2", "someuser@example.com", _ => ValueTask.FromResult("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"));
        using var bearer = new SaslOAuth("OAUTHBEARER", "user@example.com", _ => ValueTask.FromResult("vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="), "server.example.com", 587);

        // Google's XOAUTH2 documentation example (base64 dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5...).
        Text(await xoauth2.GetInitialResponseAsync(default)).Should().Be("user=someuser@example.com\u0001auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\u0001\u0001");
        // RFC 7628 §4.1 example.
        Text(await bearer.GetInitialResponseAsync(default)).Should().Be("n,a=user@example.com,\u0001host=server.example.com\u0001port=587\u0001auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg==\u0001\u0001");
    }
}
