using System.Security.Authentication;
using Polly;

namespace MailPipe.Resilience.Tests;

/// <summary>
/// Breaker17: the retry decision of <c>SendWithRetryAsync</c> (the README's classification table) for one attempt's
/// outcome × error code × IsTransient, through the public API with a delegate that gives that outcome first and
/// accepts afterwards: retried means two attempts, not retried one.
/// </summary>
public class Breaker17RetryDecisionTableTests
{
    private static readonly SmtpEnvelope Envelope = new("sender@example.test", "a@example.test", "b@example.test");

    public static TheoryData<string, bool> NotSentRows => new()
    {
        { "ConnectionRefused transient", true }, { "ConnectionRefused permanent (554 greeting)", false },
        { "ConnectionClosed transient", true }, { "HostNotFound transient", true }, { "TimedOut transient", true },
        { "SystemError transient", true }, { "ServiceNotAvailable not flagged transient", true },
        { "ProtocolError flagged transient", false }, { "ReplyTooLong flagged transient", false },
        { "StartTlsResponseInjection flagged transient", false }, { "BadCertificate flagged transient", false },
        { "BadCertificateName flagged transient", false }, { "ContentNotReplayable flagged transient", false },
        { "TlsHandshakeFailed io", true }, { "TlsHandshakeFailed authentication", false }, { "TlsHandshakeFailed bare", false },
        { "MessageTooLarge permanent", false }, { "ExtensionNotSupported permanent", false }, { "StartTlsNotOffered permanent", false },
        { "AuthenticationError 454", true }, { "AuthenticationError 535", false }, { "ContentReadFailed permanent", false },
    };

    public static TheoryData<string, bool> ResultRows => new()
    {
        { "Accepted", false }, { "Unknown", false }, { "RCPT 450 for one", true }, { "RCPT 550 for both", false },
        { "RCPT 452 and 550", true }, { "final 451", true }, { "final 554", false }, { "MAIL 452", true }, { "MAIL 553", false },
        { "DATA 451", true }, { "DATA 554", false },
    };

    [Theory]
    [MemberData(nameof(NotSentRows))]
    public async Task A_message_not_sent_is_retried_as_the_table_says(string row, bool retried)
    {
        var words = row.Split(' ');
        var code = Enum.Parse<SmtpErrorCode>(words[0]);
        var exception = row switch
        {
            "TlsHandshakeFailed io" => new SmtpException(code, "handshake", new IOException("reset")),
            "TlsHandshakeFailed authentication" => new SmtpException(code, "handshake", new AuthenticationException("version", new IOException("x"))),
            "AuthenticationError 454" => new SmtpException(code, "454") { IsTransient = true },
            _ => new SmtpException(code, row) { IsTransient = row.Contains("transient", StringComparison.Ordinal) && !row.Contains("not flagged", StringComparison.Ordinal) },
        };

        var attempts = await AttemptsAsync(m => SmtpSendResult.NotSent(m.Envelope, exception));

        attempts.Should().Be(retried ? 2 : 1, row);
    }

    [Theory]
    [MemberData(nameof(ResultRows))]
    public async Task A_result_is_retried_as_the_table_says(string row, bool retried)
    {
        static SmtpReply R(int code) => new(code, code < 400 ? "ok" : "refused");
        static SmtpRecipientResult[] Rcpts(SmtpEnvelope e, int a, int b) => [new(e.Recipients[0], R(a)), new(e.Recipients[1], R(b))];
        var attempts = await AttemptsAsync(m => row switch
        {
            "Accepted" => SmtpSendResult.Accepted(m.Envelope),
            "Unknown" => SmtpSendResult.Unknown(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "lost after the dot")),
            "RCPT 450 for one" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Accepted, R(250), Rcpts(m.Envelope, 250, 450), R(354), R(250)),
            "RCPT 550 for both" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(250), Rcpts(m.Envelope, 550, 550)),
            "RCPT 452 and 550" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(250), Rcpts(m.Envelope, 452, 550)),
            "final 451" => SmtpSendResult.Refused(m.Envelope, R(451)),
            "final 554" => SmtpSendResult.Refused(m.Envelope, R(554)),
            "MAIL 452" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(452), [new(m.Envelope.Recipients[0], null), new(m.Envelope.Recipients[1], null)]),
            "MAIL 553" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(553), [new(m.Envelope.Recipients[0], null), new(m.Envelope.Recipients[1], null)]),
            "DATA 451" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(250), Rcpts(m.Envelope, 250, 250), R(451)),
            "DATA 554" => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Refused, R(250), Rcpts(m.Envelope, 250, 250), R(554)),
            _ => throw new ArgumentException(row),
        });

        attempts.Should().Be(retried ? 2 : 1, row);
    }

    [Fact]
    public async Task An_unknown_outcome_is_retried_only_with_the_opt_in_and_an_accepted_recipient_never()
    {
        var sent = new List<string>();
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = 3, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero, RetryUnknownOutcome = true });
        var calls = 0;

        var result = await pipeline.SendWithRetryAsync(SmtpMessage.FromBytes(Envelope, "Subject: x\r\n\r\nx\r\n"u8.ToArray()), (m, _) =>
        {
            sent.AddRange(m.Envelope.Recipients.Select(r => r.Address));
            return Task.FromResult(++calls switch
            {
                1 => SmtpSendResult.Create(m.Envelope, SmtpSendOutcome.Accepted, new SmtpReply(250, "ok"), [new(m.Envelope.Recipients[0], new SmtpReply(250, "ok")), new(m.Envelope.Recipients[1], new SmtpReply(450, "busy"))], new SmtpReply(354, "go"), new SmtpReply(250, "ok")),
                2 => SmtpSendResult.Unknown(m.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "lost after the dot")),
                _ => SmtpSendResult.Accepted(m.Envelope),
            });
        });

        sent.Should().Equal("a@example.test", "b@example.test", "b@example.test", "b@example.test");
        result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        result.Attempts.Should().Be(3);
    }

    private static async Task<int> AttemptsAsync(Func<SmtpMessage, SmtpSendResult> first)
    {
        var pipeline = SmtpResiliencePipelines.CreateRetry(new SmtpRetryStrategyOptions { MaxRetryAttempts = 1, Delay = TimeSpan.Zero, ThrottledDelay = TimeSpan.Zero });
        var attempts = 0;
        await pipeline.SendWithRetryAsync(SmtpMessage.FromBytes(Envelope, "Subject: x\r\n\r\nx\r\n"u8.ToArray()), (m, _) =>
            Task.FromResult(++attempts == 1 ? first(m) : SmtpSendResult.Accepted(m.Envelope)));
        return attempts;
    }
}
