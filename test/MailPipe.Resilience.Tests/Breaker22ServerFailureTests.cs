using MailPipe.Tests.Support;
using Polly;
using static MailPipe.Resilience.Tests.Support.Scripts;

namespace MailPipe.Resilience.Tests;

/// <summary>breaker22: a 421 at any step of the transaction counts against the server (the circuit breaker's predicate).</summary>
public class Breaker22ServerFailureTests
{
    public static TheoryData<string, string[]> Steps => new()
    {
        { "RCPT", ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<a@example.test>", "S: 421 4.3.2 closing, shutting down"] },
        { "second RCPT", ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<a@example.test>", "S: 250 ok", "C: RCPT TO:<b@example.test>", "S: 421 4.3.2 closing, shutting down"] },
        { "DATA", ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", "C: RCPT TO:<a@example.test>", "S: 250 ok", "C: RCPT TO:<b@example.test>", "S: 250 ok", "C: DATA", "S: 421 4.3.2 closing, shutting down"] },
    };

    [Theory]
    [MemberData(nameof(Steps))]
    public async Task A_421_counts_against_the_server(string step, string[] transaction)
    {
        await using var server = ScriptedSmtpServer.Start([.. Greeting, .. transaction]);
        await using var session = await ConnectedAsync(server);

        var result = await session.SendAsync(Message("a@example.test", "b@example.test")).Safe();

        SmtpResiliencePredicates.IsServerFailure(Outcome.FromResult(result)).Should().BeTrue($"a 421 to {step} is the server closing ({result.Outcome}, {result.Exception?.Message})");
        SmtpResiliencePredicates.IsThrottling(result).Should().BeTrue();
        SmtpResiliencePredicates.IsTransient(result).Should().BeTrue();
    }
}
