namespace MailPipe.Tests.Session;

/// <summary>
/// The session's connect takes the same hosts as <see cref="SmtpSenderOptions.Host"/>: a host with a port or a scheme in
/// it, or with a space or tab, was looked up as a name and failed as <see cref="SmtpErrorCode.HostNotFound"/>, which is
/// transient (<see cref="SmtpException.IsTransient"/>): a retry policy tried the typo again and again, where the
/// shared sender refuses it as an <see cref="ArgumentException"/>.
/// </summary>
public class ConnectHostBreakTests
{
    [Theory]
    [InlineData("127.0.0.1:2525")]
    [InlineData("smtp.example.com:587")]
    [InlineData("smtp://smtp.example.com")]
    [InlineData("smtp.example.com ")]
    [InlineData("\tsmtp.example.com")]
    public async Task A_host_that_is_not_a_host_name_or_address_alone_is_an_ArgumentException_before_connecting(string host)
    {
        await using var session = new AsyncSmtpSession();

        (await FluentActions.Awaiting(() => session.ConnectAsync(host, 25)).Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("host");
        (await FluentActions.Awaiting(() => session.ConnectAsync(host, 25, SmtpTlsMode.None, "client.example.test")).Should().ThrowAsync<ArgumentException>()).Which.ParamName.Should().Be("host");
        session.State.Should().Be(SmtpSessionState.Disconnected);
    }

    [Theory]
    [InlineData("::1")]
    [InlineData("[::1]")]
    [InlineData("127.0.0.1")]
    public async Task An_IPv6_or_IPv4_literal_is_a_host(string host)
    {
        // Nothing listens on port 1: the connect is tried (refused), not refused as an argument.
        await using var session = new AsyncSmtpSession(new SmtpSessionOptions { ConnectTimeout = TimeSpan.FromSeconds(10) });

        (await FluentActions.Awaiting(() => session.ConnectAsync(host, 1)).Should().ThrowAsync<SmtpException>()).Which.ErrorCode.Should().Be(SmtpErrorCode.ConnectionRefused);
    }
}
