namespace MailPipe.Tests.Pooling;

/// <summary>
/// A refused password through the shared sender said "127.0.0.1:2525 refused AUTH: 535 5.7.8 Error: authentication
/// failed" (an ASP.NET Core app's log, health check and NotSent result): with the automatic choice of mechanism the
/// reader could not tell which one the server refused (a server whose SCRAM secrets differ from its PLAIN ones refuses
/// one and takes the other). The message now names it.
/// </summary>
public sealed class SenderAuthRefusalMessageTests
{
    [Fact]
    public async Task A_refused_AUTH_names_the_mechanism_the_server_refused()
    {
        await using var server = new HostileStepServer(chunking: false, auth: true);
        server.Fault = (_, at) => at == HostileStep.Auth ? new HostileAction(HostileKind.Raw, "535 5.7.8 Authentication credentials invalid\r\n") : null;
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.Credentials = new System.Net.NetworkCredential("user", "secret");
        options.Session = new SmtpSessionOptions { AllowCleartextAuthentication = true };
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(PoolTestMessages.Create("auth", 0, bodyBytes: 64).Message);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
        var error = result.Exception.Should().BeOfType<SmtpException>().Which;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.Message.Should().Contain("refused AUTH PLAIN: 535 5.7.8 Authentication credentials invalid");
        error.Reply.Should().NotBeNull("the server's reply is on the exception, as on the session's AuthenticationError");
        error.Reply!.Code.Should().Be(535);
        error.IsTransient.Should().BeFalse();
    }
}
