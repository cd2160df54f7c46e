using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Session;

/// <summary>
/// A new user's probe: EHLO with an internationalised domain name. EHLO is sent before the client knows whether the
/// server takes SMTPUTF8, so the name goes as its A-labels (RFC 6531 §3.7.1); the U-label form went as raw UTF-8
/// and Exim answered <c>501 syntactically invalid argument</c>.
/// </summary>
public class EhloInternationalisedDomainTests
{
    [Fact]
    public async Task EHLO_and_HELO_send_a_domain_with_U_labels_as_its_A_labels()
    {
        var script = SmtpScript.Parse(Greeting, "C: EHLO xn--bcher-kva.example", "S: 250 mail.example.test", "C: HELO xn--bcher-kva.xn--exmple-cua.test", "S: 250 mail.example.test");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        (await session.EhloAsync("bücher.example").Safe()).Code.Should().Be(250);
        (await session.HeloAsync("bücher.exämple.test").Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_name_with_no_A_label_form_is_an_ArgumentException_before_anything_is_written()
    {
        var script = SmtpScript.Parse(Greeting, "C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession();
        await session.ConnectAsync(server.ClientStream).Safe();

        await FluentActions.Awaiting(() => session.EhloAsync("b\u00fccher..example").Safe()).Should().ThrowAsync<ArgumentException>();
        (await session.NoopAsync().Safe()).Code.Should().Be(250, "nothing was written for the refused name");
        await server.WaitAsync();
    }
}
