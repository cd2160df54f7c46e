using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Tls;

/// <summary>A peer's probe of <see cref="SmtpTlsOptions.HandshakeTimeout"/> on the session's clock (breaker18): a server that never answers the ClientHello.</summary>
public sealed class Breaker18TlsTimeoutTests
{
    private static readonly TimeSpan Handshake = TimeSpan.FromSeconds(37);

    private static SmtpSessionOptions Options(ObservableTimeProvider clock) => new()
    {
        TimeProvider = clock,
        SendTimeout = TimeSpan.FromMinutes(9),
        ReceiveTimeout = TimeSpan.FromMinutes(11),
        Tls = new SmtpTlsOptions { TargetHost = "mail.example.test", HandshakeTimeout = Handshake },
    };

    [Fact]
    public async Task StartTls_against_a_server_silent_after_its_220_times_out_after_HandshakeTimeout()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse([.. Ehlo("STARTTLS"), "C: STARTTLS", "S: 220 2.0.0 go ahead"]).ReadUntilClosed());
        using var session = await ConnectedAsync(server, Options(clock));

        var running = session.StartTlsAsync();
        await clock.WaitUntilArmedAsync(Handshake, 1);
        clock.Advance(Handshake);

        var error = (await FluentActions.Awaiting(() => running.Safe()).Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
        session.IsEncrypted.Should().BeFalse();
        await server.WaitAsync();
    }

    [Fact]
    public async Task Implicit_TLS_against_a_server_that_never_answers_times_out_after_HandshakeTimeout()
    {
        var clock = new ObservableTimeProvider();
        await using var server = ScriptedSmtpServer.Start(new SmtpScript().ReadUntilClosed());
        using var session = new AsyncSmtpSession(Options(clock));
        await session.ConnectAsync(server.ClientStream, waitForGreeting: false).Safe();

        var running = session.ConnectTlsAsync(waitForGreeting: true);
        await clock.WaitUntilArmedAsync(Handshake, 1);
        clock.Advance(Handshake);

        var error = (await FluentActions.Awaiting(() => running.Safe()).Should().ThrowAsync<SmtpException>()).Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.TimedOut);
        session.IsConnected.Should().BeFalse();
        await server.WaitAsync();
    }
}
