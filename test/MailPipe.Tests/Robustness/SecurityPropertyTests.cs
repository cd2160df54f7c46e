using System.Net;
using System.Text;
using MailPipe.Tests.Authentication;
using MailPipe.Tests.Support;
using MailPipe.Tests.Tls;

namespace MailPipe.Tests.Robustness;

/// <summary>
/// The security properties of SECURITY.md that a scripted or loopback server can show (the smuggling properties
/// against real Postfix are in MailPipe.IntegrationTests, SmugglingPropertyTests): hostile address input refused
/// before a byte is written, STARTTLS response injection refused, credentials never logged, cleartext AUTH refused
/// unless allowed.
/// </summary>
public class SecurityPropertyTests
{
    private const string Greeting = "S: 220 mail.example.test ESMTP ready";

    public static TheoryData<string, string> InjectionInputs()
    {
        var data = new TheoryData<string, string>();
        foreach (var evil in new[] { "\r\nRCPT TO:<evil@example.test>", "x\nDATA", "x\rQUIT", "x\0y" })
        {
            foreach (var entry in new[] { "MAIL path", "MAIL parameters", "RCPT path", "RCPT parameters", "EHLO name", "HELO name", "VRFY", "envelope sender", "envelope recipient", "envelope MAIL parameters", "recipient ORCPT", "ENVID", "AUTH PLAIN identity", "AUTH LOGIN identity", "raw command" })
            {
                data.Add(entry, evil);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(InjectionInputs))]
    public async Task CR_LF_or_NUL_in_any_input_is_refused_before_a_byte_is_written(string entry, string evil)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: NOOP", "S: 250 Ok");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true });
        await session.ConnectAsync(server.ClientStream).Safe();
        var a = "a@example.test";

        Func<Task> act = entry switch
        {
            "MAIL path" => () => session.MailFromAsync(a + evil),
            "MAIL parameters" => () => session.MailFromAsync(a, "SIZE=1" + evil),
            "RCPT path" => () => session.RcptToAsync(a + evil),
            "RCPT parameters" => () => session.RcptToAsync(a, "NOTIFY=NEVER" + evil),
            "EHLO name" => () => session.EhloAsync("client" + evil),
            "HELO name" => () => session.HeloAsync("client" + evil),
            "VRFY" => () => session.VrfyAsync("user" + evil),
            "envelope sender" => () => session.SendAsync(new SmtpEnvelope(a + evil, a), "x\r\n"u8.ToArray()),
            "envelope recipient" => () => session.SendAsync(new SmtpEnvelope(a, a + evil), "x\r\n"u8.ToArray()),
            "envelope MAIL parameters" => () => session.SendAsync(new SmtpEnvelope(a, a) { MailParameters = "X=1" + evil }, "x\r\n"u8.ToArray()),
            "recipient ORCPT" => () => session.SendAsync(new SmtpEnvelope(a, [new SmtpRecipient(a) { OriginalRecipient = a + evil }]), "x\r\n"u8.ToArray()),
            "ENVID" => () => session.SendAsync(new SmtpEnvelope(a, a) { EnvelopeId = "id" + evil }, "x\r\n"u8.ToArray()),
            "AUTH PLAIN identity" => () => session.AuthPlainAsync("user" + evil, "secret"),
            "AUTH LOGIN identity" => () => session.AuthLoginAsync("user" + evil, "secret"),
            _ => () => session.SendCommandAsync("XFOO" + evil),
        };

        await act.Should().ThrowAsync<ArgumentException>();
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
        server.ReceivedText.Should().Be("NOOP\r\n", "nothing of the refused input reached the server");
    }

    [Fact]
    public async Task STARTTLS_response_injection_is_refused_before_the_handshake()
    {
        await using var server = new AuthScriptServer(async c =>
        {
            await c.GreetAndEhloAsync("STARTTLS");
            await c.ExpectAsync("STARTTLS");
            await c.SendAsync("220 Go ahead\r\n250 injected\r\n");
            await c.DrainAsync();
        });
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { Tls = TlsTestCertificate.TrustingOptions() });
        await session.ConnectAsync(server.Host, server.Port);
        await session.EhloAsync("client.test");

        var error = (await FluentActions.Awaiting(() => session.StartTlsAsync()).Should().ThrowAsync<SmtpProtocolException>()).Which;

        error.ErrorCode.Should().Be(SmtpErrorCode.StartTlsResponseInjection);
        session.IsConnected.Should().BeFalse();
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    public async Task Credentials_are_never_logged_even_at_trace_level_with_addresses_on(string mechanism)
    {
        const string user = "alice-user";
        const string password = "S3cret-Passw0rd";
        var script = SmtpScript.Parse(Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test", $"S: 250 AUTH {mechanism}");
        if (mechanism == "PLAIN")
        {
            script.Expect("AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}"))).Send("535 5.7.8 no");
        }
        else
        {
            script.Expect("AUTH LOGIN").Send("334 VXNlcm5hbWU6").Expect(Convert.ToBase64String(Encoding.UTF8.GetBytes(user))).Send("334 UGFzc3dvcmQ6")
                .Expect(Convert.ToBase64String(Encoding.UTF8.GetBytes(password))).Send("535 5.7.8 no");
        }

        await using var server = ScriptedSmtpServer.Start(script);
        using var log = new ListLoggerProvider();
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { AllowCleartextAuthentication = true, LoggerFactory = log, LogAddresses = true });
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();

        (await session.AuthenticateAsync(new NetworkCredential(user, password)).Safe()).Code.Should().Be(535);

        await server.WaitAsync();
        var all = string.Join("\n", log.Messages);
        all.Should().Contain("AUTH", "the exchange is in the transcript, redacted");
        foreach (var secret in new[] { password, Convert.ToBase64String(Encoding.UTF8.GetBytes(password)), Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{user}\0{password}")), Convert.ToBase64String(Encoding.UTF8.GetBytes(user)) })
        {
            all.Should().NotContain(secret);
        }
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("XOAUTH2")]
    public async Task Cleartext_AUTH_is_refused_unless_allowed_and_nothing_is_sent(string mechanism)
    {
        await using var server = ScriptedSmtpServer.Start(Greeting, "C: EHLO client.example.test", "S: 250-mail.example.test", $"S: 250 AUTH {mechanism}", "C: NOOP", "S: 250 Ok");
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();
        await session.EhloAsync("client.example.test").Safe();

        Func<Task> act = mechanism switch
        {
            "PLAIN" => () => session.AuthPlainAsync("user", "secret"),
            "LOGIN" => () => session.AuthLoginAsync("user", "secret"),
            _ => () => session.AuthXOAuth2Async("user@example.test", _ => ValueTask.FromResult("token")),
        };

        await act.Should().ThrowAsync<InvalidOperationException>().WithMessage("*without TLS*");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }
}
