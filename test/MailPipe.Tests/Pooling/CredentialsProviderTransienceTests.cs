using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A credentials or token provider that failed was always a permanent AuthenticationError, so a secret store or token
/// endpoint that was briefly unreachable made the message NotSent with no retry (MailPipe.Resilience classifies it by
/// <see cref="SmtpException.IsTransient"/>). A failure of the provider's own I/O is now transient; a 4xx, a bug or a
/// missing secret stays permanent.
/// </summary>
public sealed class CredentialsProviderTransienceTests
{
    public static TheoryData<string, Exception, bool> Failures() => new()
    {
        { "no connection to the secret store", new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (vault:443)", new SocketException((int)SocketError.ConnectionRefused)), true },
        { "its name does not resolve", new HttpRequestException(HttpRequestError.NameResolutionError, "Name or service not known (vault:443)"), true },
        { "503", new HttpRequestException("Response status code does not indicate success: 503 (Service Unavailable).", null, HttpStatusCode.ServiceUnavailable), true },
        { "429", new HttpRequestException("Too many requests.", null, HttpStatusCode.TooManyRequests), true },
        { "408", new HttpRequestException("Request timeout.", null, HttpStatusCode.RequestTimeout), true },
        { "a timeout", new TimeoutException("The secret store did not answer."), true },
        { "HttpClient.Timeout", new TaskCanceledException("The request was canceled due to the configured HttpClient.Timeout of 10 seconds elapsing.", new TimeoutException("The operation was canceled.")), true },
        { "an I/O failure", new IOException("The response ended early."), true },
        { "a socket failure", new SocketException((int)SocketError.ConnectionReset), true },
        { "401", new HttpRequestException("Response status code does not indicate success: 401 (Unauthorized).", null, HttpStatusCode.Unauthorized), false },
        { "403", new HttpRequestException("Forbidden.", null, HttpStatusCode.Forbidden), false },
        { "404", new HttpRequestException("Not found.", null, HttpStatusCode.NotFound), false },
        { "the store's certificate", new HttpRequestException(HttpRequestError.SecureConnectionError, "The SSL connection could not be established.", new AuthenticationException("remote certificate invalid")), false },
        { "a missing secret file", new FileNotFoundException("No such file.", "/run/secrets/smtp"), false },
        { "a bug", new InvalidOperationException("The secret store client is not configured."), false },
        { "TLS to the store", new AuthenticationException("The remote certificate is invalid."), false },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task A_credentials_provider_s_failure_is_transient_only_when_its_own_I_O_failed(string what, Exception failure, bool transient)
    {
        await using var server = new LoopbackSmtpServer();
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.CredentialsProvider = _ => ValueTask.FromException<NetworkCredential>(failure);
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(PoolTestMessages.Create("provider", 0).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.IsTransient.Should().Be(transient, what);
        result.IsTransientFailure.Should().Be(transient);
        error.InnerException.Should().BeSameAs(failure, "the provider's failure is kept as the cause");
        server.Received.Should().BeEmpty();
    }

    [Fact]
    public async Task An_access_token_provider_s_unreachable_endpoint_is_transient_too()
    {
        await using var server = ScriptedSmtpServer.Start(SmtpScript.Parse(
            "S: 220 scripted ESMTP",
            "C: EHLO client.pool.test",
            "S: 250-scripted",
            "S: 250 AUTH XOAUTH2").ReadUntilClosed());
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Name = "test",
            EhloName = "client.pool.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { AllowCleartextAuthentication = true },
            ConnectStream = _ => ValueTask.FromResult<Stream>(server.ClientStream),
            OAuthUserName = "user@example.test",
            AccessTokenProvider = _ => throw new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused (login.example:443)"),
        });

        var result = await sender.SendAsync(PoolTestMessages.Create("token", 0).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        var error = result.Exception.Should().BeOfType<SmtpException>().Subject;
        error.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        error.IsTransient.Should().BeTrue();
        error.InnerException.Should().BeOfType<HttpRequestException>();
        server.ReceivedText.Should().NotContain("AUTH");
    }

    [Fact]
    public async Task An_SmtpException_the_provider_throws_is_kept_as_it_is()
    {
        await using var server = new LoopbackSmtpServer();
        var own = new SmtpException(SmtpErrorCode.AuthenticationError, "The vault is sealed; try later.") { IsTransient = true };
        var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
        options.CredentialsProvider = _ => ValueTask.FromException<NetworkCredential>(own);
        await using var sender = new SmtpSender(options);

        var result = await sender.SendAsync(PoolTestMessages.Create("provider-own", 0).Message).WaitAsync(ScriptedSmtpServer.SafetyTimeout);

        result.Exception.Should().BeSameAs(own);
        result.IsTransientFailure.Should().BeTrue();
    }
}
