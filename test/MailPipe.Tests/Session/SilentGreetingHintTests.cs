using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>
/// A plain connection (SmtpTlsMode.None or StartTlsRequired, or ConnectAsync alone) to a port of implicit TLS (RFC 8314
/// §3.3; Postfix's 4650 here, 465 in the wild) gets no greeting: the server waits for the client's TLS hello. After the
/// whole reply timeout the caller read only "Timed out after 30 s while waiting for the greeting", with nothing to say
/// that the port likely wanted TLS from the first byte. The error now says so (the code stays TimedOut; no timeout of
/// its own is guessed), and only when not one byte of a greeting came.
/// </summary>
public class SilentGreetingHintTests
{
    private static readonly TimeSpan ReceiveTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_greeting_that_never_comes_on_a_plain_connection_suggests_implicit_TLS()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start("EXPECT CLOSE");
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { TimeProvider = clock, ReceiveTimeout = ReceiveTimeout });

        var connect = session.ConnectAsync(server.ClientStream);
        await clock.WaitUntilArmedAsync(ReceiveTimeout, 1);
        clock.Advance(ReceiveTimeout);

        var thrown = (await FluentActions.Awaiting(() => connect.Safe()).Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        thrown.IsTransient.Should().BeTrue();
        thrown.Message.Should().Contain("waiting for the greeting").And.Contain("No greeting").And.Contain("SmtpTlsMode.Implicit");
        thrown.InnerException.Should().BeOfType<TimeoutException>();
        await server.WaitAsync();
    }

    [Fact]
    public async Task A_greeting_cut_short_is_not_taken_for_a_port_of_implicit_TLS()
    {
        // Each line waits until the client has read the one before: once the second is read, the first was parsed.
        var clock = new ObservableTimeProvider();
        var secondLineRead = new TaskCompletionSource();
        var script = SmtpScript.Parse("S: 220-mail.example.test first line of a greeting", "S: 220-second line").Signal(secondLineRead).ExpectClosed();
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = new AsyncSmtpSession(new SmtpSessionOptions { TimeProvider = clock, ReceiveTimeout = ReceiveTimeout });

        var connect = session.ConnectAsync(server.ClientStream);
        await secondLineRead.Task.Safe();
        await clock.WaitUntilArmedAsync(ReceiveTimeout, 1);
        clock.Advance(ReceiveTimeout);

        var thrown = (await FluentActions.Awaiting(() => connect.Safe()).Should().ThrowAsync<SmtpException>()).Which;
        thrown.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        thrown.Message.Should().NotContain("SmtpTlsMode.Implicit", "the server did speak SMTP in clear text");
        await server.WaitAsync();
    }
}
