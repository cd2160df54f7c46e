using System.Net;
using System.Net.Sockets;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Time.Testing;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>
/// The pooled sender's asynchronous <c>CredentialsProvider</c> failing, against Postfix's submission port (STARTTLS,
/// AUTH required), under the standard pipeline: per the classification table a failure of the provider's own I/O is
/// transient (retried, the message delivered once, the circuit never opened), anything else permanent (one attempt,
/// NotSent AuthenticationError with the provider's exception as the cause).
/// </summary>
[Trait("Category", "Integration")]
public sealed class PeerCredentialsProviderTests
{
    public static TheoryData<string, bool> Failures => new()
    {
        { "HTTP 408", true },
        { "HTTP 429", true },
        { "HTTP 503", true },
        { "TimeoutException", true },
        { "HttpClient.Timeout", true },
        { "IOException", true },
        { "SocketException", true },
        { "SmtpException marked transient", true },
        { "HTTP 401", false },
        { "HTTP 404", false },
        { "InvalidOperationException", false },
        { "KeyNotFoundException", false },
    };

    private static Exception Failure(string kind) => kind switch
    {
        "HTTP 408" => new HttpRequestException("vault: timeout", null, HttpStatusCode.RequestTimeout),
        "HTTP 429" => new HttpRequestException("vault: too many requests", null, HttpStatusCode.TooManyRequests),
        "HTTP 503" => new HttpRequestException("vault: unavailable", null, HttpStatusCode.ServiceUnavailable),
        "TimeoutException" => new TimeoutException("vault did not answer"),
        "HttpClient.Timeout" => new TaskCanceledException("The request was canceled due to the configured HttpClient.Timeout of 100 seconds elapsing.", new TimeoutException("elapsed")),
        "IOException" => new IOException("vault connection reset"),
        "SocketException" => new SocketException((int)SocketError.ConnectionRefused),
        "SmtpException marked transient" => new SmtpException(SmtpErrorCode.AuthenticationError, "vault sealed for a moment") { IsTransient = true },
        "HTTP 401" => new HttpRequestException("vault: unauthorized", null, HttpStatusCode.Unauthorized),
        "HTTP 404" => new HttpRequestException("vault: no such secret", null, HttpStatusCode.NotFound),
        "InvalidOperationException" => new InvalidOperationException("a bug in the provider"),
        _ => new KeyNotFoundException("smtp-password"),
    };

    private static SmtpSenderOptions Submission(Func<CancellationToken, ValueTask<NetworkCredential>> provider, string? password = null)
    {
        var options = PeerSupport.Options(TestServers.PostfixSubmissionPort, o =>
        {
            o.TlsMode = SmtpTlsMode.StartTlsRequired;
            o.MaxConnections = 1;
        });
        options.CredentialsProvider = password is null ? provider : _ => ValueTask.FromResult(new NetworkCredential(TestServers.User, password));
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task A_provider_that_fails_once_is_retried_only_when_its_failure_is_transient(string kind, bool transient)
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var calls = 0;
        var failure = Failure(kind);
        await using var sender = new SmtpSender(Submission(async token =>
        {
            await Task.Yield();
            if (Interlocked.Increment(ref calls) == 1)
            {
                throw failure;
            }

            return new NetworkCredential(TestServers.User, TestServers.Password);
        })).WithStandardResilience(PeerSupport.Fast(2));
        var recipient = TestServers.UniqueRecipient("p18b-provider");
        var mail = PeerSupport.Mail(recipient);

        var result = await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard);

        if (transient)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted, result.ToString());
            result.Attempts.Should().Be(2);
            calls.Should().Be(2);
            (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
        }
        else
        {
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            result.IsTransientFailure.Should().BeFalse();
            result.Attempts.Should().Be(1);
            var exception = result.Exception.Should().BeOfType<SmtpException>().Subject;
            exception.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
            exception.InnerException.Should().BeSameAs(failure, "the provider's exception is the cause");
            calls.Should().Be(1);
        }
    }

    [Fact]
    public async Task A_provider_whose_secret_store_stays_down_is_retried_but_never_opens_the_circuit()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var down = true;
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var sender = new SmtpSender(Submission(async _ =>
        {
            await Task.Yield();
            return Volatile.Read(ref down)
                ? throw new HttpRequestException("vault: unavailable", null, HttpStatusCode.ServiceUnavailable)
                : new NetworkCredential(TestServers.User, TestServers.Password);
        })).WithStandardResilience(PeerSupport.Fast(1, o => o.CircuitBreaker.MinimumThroughput = 2), clock);

        for (var i = 0; i < 4; i++)
        {
            var failed = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-vault")).Message).WaitAsync(PeerSupport.Guard);
            failed.Outcome.Should().Be(SmtpSendOutcome.NotSent);
            failed.Attempts.Should().Be(2);
            failed.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError, "not the open circuit's ServiceNotAvailable");
        }

        Volatile.Write(ref down, false);
        var recipient = TestServers.UniqueRecipient("p18b-vault-back");
        var mail = PeerSupport.Mail(recipient);
        (await sender.SendAsync(mail.Message).WaitAsync(PeerSupport.Guard)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        (await PeerSupport.CopiesAsync(PeerServer.Postfix, recipient, mail)).Should().Be(1);
    }

    [Fact]
    public async Task A_wrong_password_535_is_permanent_one_attempt_and_NotSent_AuthenticationError()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        await using var sender = new SmtpSender(Submission(_ => default, password: "wrong-password")).WithStandardResilience(PeerSupport.Fast(3));

        var result = await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-535")).Message).WaitAsync(PeerSupport.Guard);

        result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        result.Attempts.Should().Be(1);
        result.IsTransientFailure.Should().BeFalse();
        var exception = result.Exception.Should().BeOfType<SmtpException>().Subject;
        exception.ErrorCode.Should().Be(SmtpErrorCode.AuthenticationError);
        exception.Reply!.Code.Should().Be(535);
    }

    [Fact]
    public async Task The_provider_is_asked_again_for_each_new_connection()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var calls = 0;
        var options = Submission(async _ =>
        {
            await Task.Yield();
            Interlocked.Increment(ref calls);
            return new NetworkCredential(TestServers.User, TestServers.Password);
        });
        options.MaxMessagesPerConnection = 1;
        await using var sender = new SmtpSender(options).WithStandardResilience();

        for (var i = 0; i < 3; i++)
        {
            (await sender.SendAsync(PeerSupport.Mail(TestServers.UniqueRecipient("p18b-rotate")).Message).WaitAsync(PeerSupport.Guard)).Outcome.Should().Be(SmtpSendOutcome.Accepted);
        }

        calls.Should().Be(3, "one connection per message here, and providers are called per connection");
    }
}
