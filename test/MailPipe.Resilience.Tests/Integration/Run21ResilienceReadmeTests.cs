using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using Polly;
using Polly.Retry;
using Polly.Timeout;

namespace MailPipe.Resilience.Tests.Integration;

/// <summary>
/// A new user runs the resilience examples of README.md ("Retries") and src/MailPipe.Resilience/README.md as written
/// (default delays and all), against the real Postfix; only host, port, credentials and addresses are adapted.
/// </summary>
public sealed class Run21ResilienceReadmeTests
{
    private static readonly CancellationToken ct = CancellationToken.None;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);

    private static SmtpSenderOptions Trusting(SmtpSenderOptions options)
    {
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    private static int StoredCopies(string recipient)
    {
        var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
        return Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
    }

    /// <summary>README.md "Retries": the standard pipeline in one line; "Accepted after 1 attempt(s)".</summary>
    [Fact]
    public async Task Readme_retries_block_prints_Accepted_after_one_attempt()
    {
        TestServers.RequireListening(TestServers.PostfixSubmissionPort);
        var bob = TestServers.UniqueRecipient("run21-retries");
        await using ISmtpSender sender = new SmtpSender(Trusting(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixSubmissionPort,
            Credentials = new NetworkCredential(TestServers.User, TestServers.Password),
        })).WithStandardResilience();
        var result = await sender.SendAsync(new SmtpEnvelope("alice@example.test", bob), "Subject: Hi\r\n\r\nHello\r\n"u8.ToArray(), ct).WaitAsync(Wait);
        $"{result.Outcome} after {result.Attempts} attempt(s)".Should().Be("Accepted after 1 attempt(s)");
        (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);
    }

    /// <summary>
    /// src/MailPipe.Resilience/README.md "Without dependency injection", with its default delays: bob@ accepted on the
    /// first attempt, busy@ (Postfix's tempfail@, 450) asked three times, bob@ never again; the printed lines.
    /// </summary>
    [Fact]
    public async Task Resilience_readme_without_DI_block_retries_only_the_busy_recipient()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-bob");
        await using ISmtpSender sender = new SmtpSender(Trusting(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort }))
            .WithStandardResilience(o => o.Retry.MaxRetryAttempts = 2);

        var message = SmtpMessage.FromBytes(
            new SmtpEnvelope("alice@example.test", bob, "tempfail@example.test"),
            "Subject: Report\r\n\r\nAttached.\r\n"u8.ToArray());
        SmtpSendResult result = await sender.SendAsync(message, ct).WaitAsync(Wait);

        var lines = new List<string> { $"{result.Outcome} after {result.Attempts} attempt(s)" };
        foreach (var recipient in result.Recipients)
        {
            lines.Add($"{recipient.Recipient.Address}: {recipient.Reply?.Code} {(recipient.Accepted ? "accepted" : "refused")}");
        }

        lines.Should().Equal("Accepted after 3 attempt(s)", $"{bob}: 250 accepted", "tempfail@example.test: 450 refused");
        (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);
        await Task.Delay(TimeSpan.FromSeconds(1));
        StoredCopies(bob).Should().Be(1, "bob@ never again");
    }

    /// <summary>src/MailPipe.Resilience/README.md "Around a bare session": reconnect in the delegate; one attempt, one copy.</summary>
    [Fact]
    public async Task Resilience_readme_bare_session_block_delivers_once()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-bare");
        var pipeline = SmtpResiliencePipelines.CreateStandard();
        var options = new SmtpSessionOptions();
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var session = new AsyncSmtpSession(options);
        var message = SmtpMessage.FromBytes(new SmtpEnvelope("alice@example.test", bob), "Subject: Hi\r\n\r\nHello\r\n"u8.ToArray());

        SmtpSendResult result = await pipeline.SendWithRetryAsync(message, async (attempt, token) =>
        {
            if (!session.IsConnected)
            {
                await session.ConnectAsync(TestServers.Host, TestServers.PostfixPort, SmtpTlsMode.StartTlsRequired, "client.example.com", token);
            }

            return await session.SendAsync(attempt, token);
        }, ct).WaitAsync(Wait);

        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(1);
        session.IsEncrypted.Should().BeTrue();
        (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);
    }

    /// <summary>
    /// src/MailPipe.Resilience/README.md "A pipeline of your own": the hand-written predicate does not retry an accepted
    /// message whose other recipient was refused with 4yz (that would deliver twice), and retries a message refused whole with 4yz.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Resilience_readme_own_pipeline_block_never_resends_an_accepted_message(bool withOrdinaryRecipient)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var bob = TestServers.UniqueRecipient("run21-own");
        await using var sender = new SmtpSender(new SmtpSenderOptions { Host = TestServers.Host, Port = TestServers.PostfixPort, TlsMode = SmtpTlsMode.None });
        var pipeline = new ResiliencePipelineBuilder<SmtpSendResult>()
            .AddRetry(new RetryStrategyOptions<SmtpSendResult>
            {
                MaxRetryAttempts = 3,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = TimeSpan.FromMilliseconds(10),   // the block keeps Polly's 2 s; shortened here only
                ShouldHandle = args => ValueTask.FromResult(args.Outcome switch
                {
                    { Exception: { } ex } when IsOutcomeUnknown(ex) => false,
                    { Exception: TimeoutRejectedException } => true,
                    { Exception: OperationCanceledException } => false,
                    { Exception: { } ex } => SmtpResiliencePredicates.IsTransient(ex),
                    { Result: { } result } => SmtpResiliencePredicates.IsTransient(result),
                    _ => false,
                }),
            })
            .AddTimeout(TimeSpan.FromSeconds(90))
            .Build();

        var envelope = withOrdinaryRecipient
            ? new SmtpEnvelope("alice@example.test", bob, "tempfail@example.test")
            : new SmtpEnvelope("alice@example.test", "tempfail@example.test");
        var message = SmtpMessage.FromBytes(envelope, "Subject: Hi\r\n\r\nHello\r\n"u8.ToArray());
        var calls = 0;
        SmtpSendResult result = await pipeline.ExecuteAsync(async token => { calls++; return await sender.SendAsync(message, token); }, ct).AsTask().WaitAsync(Wait);

        if (withOrdinaryRecipient)
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
            calls.Should().Be(1, "such a pipeline does not retry an accepted message whose other recipients were refused with 4yz");
            (await Maildir.WaitForPostfixAsync(bob)).Should().HaveCount(1);
        }
        else
        {
            result.Outcome.Should().Be(SmtpSendOutcome.Refused);
            calls.Should().Be(4, "a 4yz refusal of the whole message is transient: 1 + MaxRetryAttempts");
        }

        static bool IsOutcomeUnknown(Exception? exception)
        {
            for (var e = exception; e is not null; e = e.InnerException)
            {
                if (e is SmtpOutcomeUnknownException)
                {
                    return true;
                }
            }

            return false;
        }
    }
}
