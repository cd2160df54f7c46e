using System.Net.Http;
using Microsoft.Extensions.Time.Testing;
using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// A sender whose credentials or token provider failed on its own I/O (the secret store unreachable) gives a
/// transient AuthenticationError around the provider's exception: retried by the pipeline, but not counted by the
/// circuit breaker of the SMTP server, which did nothing wrong (before, it counted as a failure of the server). A
/// server's own transient refusal of AUTH (454) still counts.
/// </summary>
public sealed class CredentialsProviderRetryTests
{
    private static SmtpSendResult ProviderFailed(SmtpMessage m) => SmtpSendResult.NotSent(m.Envelope, new SmtpException(
        SmtpErrorCode.AuthenticationError, "The credentials provider of test failed (HttpRequestException): Connection refused; no AUTH was sent.",
        new HttpRequestException(HttpRequestError.ConnectionError, "Connection refused")) { IsTransient = true });

    [Fact]
    public void A_provider_s_transient_failure_is_retried_but_not_a_server_failure()
    {
        var outcome = Outcome.FromResult(ProviderFailed(Message("a@example.test")));

        SmtpResiliencePredicates.IsTransient(outcome).Should().BeTrue();
        SmtpResiliencePredicates.IsServerFailure(outcome).Should().BeFalse();
    }

    [Fact]
    public void A_server_s_transient_refusal_of_AUTH_still_counts_against_the_server()
    {
        var outcome = Outcome.FromResult(SmtpSendResult.NotSent(Message("a@example.test").Envelope,
            new SmtpException(SmtpErrorCode.AuthenticationError, "test refused AUTH: 454 4.7.0 Temporary authentication failure") { IsTransient = true }));

        SmtpResiliencePredicates.IsServerFailure(outcome).Should().BeTrue();
    }

    [Fact]
    public async Task Repeated_provider_failures_are_retried_and_never_open_the_circuit()
    {
        var options = new SmtpStandardResilienceOptions();
        options.Retry.MaxRetryAttempts = 1;
        options.Retry.Delay = TimeSpan.Zero;
        options.CircuitBreaker.MinimumThroughput = 2;
        options.CircuitBreaker.FailureRatio = 0.5;
        var pipeline = SmtpResiliencePipelines.CreateStandard(options, new FakeTimeProvider());
        var calls = 0;

        for (var i = 0; i < 5; i++)
        {
            var result = await pipeline.SendWithRetryAsync(Message("a@example.test"), (m, _) =>
            {
                calls++;
                return Task.FromResult(ProviderFailed(m));
            });
            result.Attempts.Should().Be(2);
            result.Exception!.InnerException.Should().BeOfType<HttpRequestException>("the provider's failure, not an open circuit");
        }

        calls.Should().Be(10);
    }
}
