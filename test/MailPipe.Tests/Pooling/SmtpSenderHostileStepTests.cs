using System.Text;
using MailPipe.Tests.Support;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// Issue #17 through the pooled sender (breaker15): a hostile or broken server at every step of the connection set-up
/// and of a transaction, on the first connection; concurrent callers. Every caller's result is held against what the
/// server read and acknowledged: Accepted only when it acknowledged the end of data, once; Unknown only when it read
/// the end of data; NotSent only when it never did, with a typed <see cref="SmtpException"/>. Nothing hangs, nothing is
/// thrown, the pool serves the next message, and disposal ends.
/// </summary>
public sealed class SmtpSenderHostileStepTests(ITestOutputHelper output)
{
    private static readonly Dictionary<HostileStep, int> NormalCodes = new()
    {
        [HostileStep.Greeting] = 220,
        [HostileStep.Ehlo] = 250,
        [HostileStep.Auth] = 235,
        [HostileStep.Mail] = 250,
        [HostileStep.Rcpt] = 250,
        [HostileStep.Data] = 354,
        [HostileStep.Bdat] = 250,
        [HostileStep.EndOfData] = 250,
        [HostileStep.Rset] = 250,
        [HostileStep.Noop] = 250,
        [HostileStep.Quit] = 221,
    };

    public static TheoryData<HostileStep, string, bool> Cases()
    {
        var data = new TheoryData<HostileStep, string, bool>();
        foreach (var step in NormalCodes.Keys)
        {
            foreach (var fault in FaultNames)
            {
                foreach (var chunking in new[] { false, true })
                {
                    if ((step == HostileStep.Bdat && !chunking) || (step == HostileStep.Data && chunking))
                    {
                        continue;
                    }

                    data.Add(step, fault, chunking);
                }
            }
        }

        return data;
    }

    private static readonly string[] FaultNames =
    [
        "garbage", "code199", "code600", "mismatched-multiline", "nul-in-text", "invalid-utf8", "huge-line", "huge-multiline",
        "extra-reply", "421", "ok-then-421", "per-byte", "reset", "close",
    ];

    private static HostileAction Fault(string name, int code) => name switch
    {
        "garbage" => new(HostileKind.Raw, "xyz garbage\r\n"),
        "code199" => new(HostileKind.Raw, "199 too low\r\n"),
        "code600" => new(HostileKind.Raw, "600 too high\r\n"),
        "mismatched-multiline" => new(HostileKind.Raw, $"{code}-first\r\n{code + 1} second\r\n"),
        "nul-in-text" => new(HostileKind.Raw, $"{code} a\0b\r\n", Positive: true),
        "invalid-utf8" => new(HostileKind.Raw, $"{code} caf\u00C3\u0028 \u00FF\r\n", Positive: true),
        "huge-line" => new(HostileKind.Raw, new string('a', 100_000)),
        "huge-multiline" => new(HostileKind.Raw, string.Concat(Enumerable.Repeat($"{code}-{new string('x', 1000)}\r\n", 300)) + $"{code} end\r\n"),
        "extra-reply" => new(HostileKind.Raw, $"{code} ok\r\n250 2.0.0 extra\r\n", Positive: true),
        "421" => new(HostileKind.Raw, "421 4.3.2 Service shutting down\r\n", CloseAfter: true),
        "ok-then-421" => new(HostileKind.Raw, $"{code} ok\r\n421 4.3.2 Service shutting down\r\n", Positive: true, CloseAfter: true),
        "per-byte" => new(HostileKind.PerByte),
        "reset" => new(HostileKind.Reset),
        "close" => new(HostileKind.Close),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task A_hostile_first_connection_at_any_step_leaves_every_caller_a_truthful_typed_result_and_the_pool_serving(HostileStep step, string fault, bool chunking)
    {
        await using var server = new HostileStepServer(chunking, auth: true);
        var action = Fault(fault, NormalCodes[step]);
        server.Fault = (connection, at) => connection == 0 && at == step ? action : null;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 2, maxBatchSize: 4);
        options.TimeProvider = time;
        options.Credentials = new System.Net.NetworkCredential("user", "secret");
        options.Session = new SmtpSessionOptions { AllowCleartextAuthentication = true };
        var sender = new SmtpSender(options);
        var messages = new List<(SmtpMessage Message, string MessageId)>();
        var results = new List<SmtpSendResult>();
        try
        {
            await RoundAsync(sender, "first", messages, results);
            time.Advance(TimeSpan.FromSeconds(6));   // past NoopAfterIdle: the next lend checks with NOOP
            await RoundAsync(sender, "second", messages, results);
            var last = PoolTestMessages.Create("last", 0);
            var lastResult = await sender.SendAsync(last.Message).Safe();
            messages.Add(last);
            results.Add(lastResult);
            lastResult.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the pool serves the next message: {0}", lastResult);
        }
        finally
        {
            await sender.DisposeAsync().Safe();
        }

        for (var i = 0; i < messages.Count; i++)
        {
            output.WriteLine($"{messages[i].MessageId}: {results[i]}");
            var id = messages[i].MessageId;
            var seen = server.EndsSeen.Count(x => x == id);
            var acknowledged = server.EndsAcknowledged.Count(x => x == id);
            acknowledged.Should().BeLessThanOrEqualTo(1, "no message is delivered twice ({0})", id);
            switch (results[i].Outcome)
            {
                case SmtpSendOutcome.Accepted:
                    acknowledged.Should().Be(1, "Accepted means the server acknowledged its end of data ({0})", results[i]);
                    break;
                case SmtpSendOutcome.NotSent:
                    acknowledged.Should().Be(0, "NotSent means nothing was delivered ({0})", results[i]);
                    seen.Should().Be(0, "NotSent means the server never read the end of data ({0})", results[i]);
                    results[i].Exception.Should().BeAssignableTo<SmtpException>("a NotSent says why, typed ({0})", results[i]);
                    break;
                case SmtpSendOutcome.Refused:
                    acknowledged.Should().Be(0, "Refused means the server did not acknowledge it ({0})", results[i]);
                    break;
                default:
                    // Unknown: the end of data was written and no reply came; pipelined, the server may or may not have read it.
                    break;
            }
        }
    }

    public static TheoryData<HostileStep, string, bool> SilentCases()
    {
        var data = new TheoryData<HostileStep, string, bool>();
        foreach (var step in NormalCodes.Keys)
        {
            foreach (var chunking in new[] { false, true })
            {
                if (!((step == HostileStep.Bdat && !chunking) || (step == HostileStep.Data && chunking)))
                {
                    data.Add(step, "silent", chunking);
                    data.Add(step, "no-crlf", chunking);
                    data.Add(step, "half-multiline", chunking);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(SilentCases))]
    public async Task A_first_connection_that_never_answers_at_any_step_times_out_on_the_fake_clock_with_truthful_results(HostileStep step, string fault, bool chunking)
    {
        await using var server = new HostileStepServer(chunking, auth: true);
        var code = NormalCodes[step];
        var action = fault switch
        {
            "no-crlf" => new HostileAction(HostileKind.Raw, $"{code} ok", SilentAfter: true),
            "half-multiline" => new HostileAction(HostileKind.Raw, $"{code}-first line\r\n{code}-second line\r\n", SilentAfter: true),
            _ => new HostileAction(HostileKind.Silent),
        };
        server.Fault = (connection, at) => connection == 0 && at == step ? action : null;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 2, maxBatchSize: 4);
        options.TimeProvider = time;
        options.Credentials = new System.Net.NetworkCredential("user", "secret");
        options.Session = new SmtpSessionOptions { AllowCleartextAuthentication = true };
        var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create("silent", i, bodyBytes: 512)).ToList();
        var results = new List<SmtpSendResult>();
        try
        {
            results.AddRange(await DriveAsync(Task.WhenAll(messages.Select(m => sender.SendAsync(m.Message))), time, server));
            time.Advance(TimeSpan.FromSeconds(6));
            var second = Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create("silent2", i, bodyBytes: 512)).ToList();
            results.AddRange(await DriveAsync(Task.WhenAll(second.Select(m => sender.SendAsync(m.Message))), time, server));
            messages.AddRange(second);
        }
        finally
        {
            await DriveAsync(sender.DisposeAsync().AsTask().ContinueWith(_ => 0, TaskScheduler.Default), time, server);
        }

        for (var i = 0; i < messages.Count; i++)
        {
            output.WriteLine($"{messages[i].MessageId}: {results[i]}");
            var acknowledged = server.EndsAcknowledged.Count(x => x == messages[i].MessageId);
            acknowledged.Should().BeLessThanOrEqualTo(1);
            switch (results[i].Outcome)
            {
                case SmtpSendOutcome.Accepted:
                    acknowledged.Should().Be(1, "{0}", results[i]);
                    break;
                case SmtpSendOutcome.NotSent:
                    acknowledged.Should().Be(0, "{0}", results[i]);
                    results[i].Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().BeOneOf(SmtpErrorCode.TimedOut);
                    break;
                case SmtpSendOutcome.Unknown:
                    break;
                default:
                    throw new InvalidOperationException($"unexpected {results[i]}");
            }
        }
    }

    public static TheoryData<HostileStep, string> StartTlsCases()
    {
        var data = new TheoryData<HostileStep, string>();
        foreach (var fault in FaultNames.Append("454").Append("injection").Append("silent"))
        {
            data.Add(HostileStep.StartTls, fault);
        }

        foreach (var fault in new[] { "not-tls", "reset", "close", "silent" })
        {
            data.Add(HostileStep.TlsHandshake, fault);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(StartTlsCases))]
    public async Task A_hostile_STARTTLS_on_the_first_connection_is_a_typed_NotSent_or_a_delivery_on_the_next_and_never_cleartext(HostileStep step, string fault)
    {
        await using var server = new HostileStepServer(chunking: true, auth: true, certificate: Tls.TlsTestCertificate.WithKey);
        var action = fault switch
        {
            "454" => new HostileAction(HostileKind.Raw, "454 4.7.0 TLS not available due to local problem\r\n"),
            "injection" => new HostileAction(HostileKind.Raw, "220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n", Positive: true),
            "silent" => new HostileAction(HostileKind.Silent),
            "not-tls" => new HostileAction(HostileKind.Raw, "this is not a TLS handshake\r\n"),
            _ => Fault(fault, 220),
        };
        server.Fault = (connection, at) => connection == 0 && at == step ? action : null;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var options = PoolTestMessages.Options(server.Port, maxConnections: 2, maxBatchSize: 4);
        options.TlsMode = SmtpTlsMode.StartTlsRequired;
        options.Tls = Tls.TlsTestCertificate.TrustingOptions();
        options.Tls.HandshakeTimeout = TimeSpan.FromSeconds(10);
        options.TimeProvider = time;
        options.Credentials = new System.Net.NetworkCredential("user", "secret");
        var sender = new SmtpSender(options);
        var messages = Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create("tls", i, bodyBytes: 512)).ToList();
        var results = new List<SmtpSendResult>();
        try
        {
            results.AddRange(await DriveAsync(Task.WhenAll(messages.Select(m => sender.SendAsync(m.Message))), time, server));
            time.Advance(TimeSpan.FromMinutes(2));   // a connection still opening on the silent server fails by now

            // ...and is closed on the server's side too: with a silent connection left, DriveAsync below would move the
            // clock past the last message's AcquireTimeout while it waits (a loaded machine's lag, not the pool's fault).
            for (var i = 0; i < 6000 && (sender.GetStatistics().Opening > 0 || server.SilentNow > 0); i++)
            {
                await Task.Delay(5);
            }

            var last = PoolTestMessages.Create("tls-last", 0);
            var lastResult = await DriveAsync(sender.SendAsync(last.Message), time, server);
            messages.Add(last);
            results.Add(lastResult);
            lastResult.Outcome.Should().Be(SmtpSendOutcome.Accepted, "the pool serves the next message: {0}", lastResult);
        }
        finally
        {
            await DriveAsync(sender.DisposeAsync().AsTask().ContinueWith(_ => 0, TaskScheduler.Default), time, server);
        }

        server.Commands.Select(c => c.Line).Should().NotContain(
            l => l.StartsWith("MAIL", StringComparison.Ordinal) || l.StartsWith("AUTH", StringComparison.Ordinal),
            "nothing after a failed STARTTLS goes out in cleartext");
        for (var i = 0; i < messages.Count; i++)
        {
            output.WriteLine($"{messages[i].MessageId}: {results[i]}");
            var acknowledged = server.EndsAcknowledged.Count(x => x == messages[i].MessageId);
            if (results[i].Outcome == SmtpSendOutcome.Accepted)
            {
                acknowledged.Should().Be(1);
            }
            else
            {
                results[i].Outcome.Should().Be(SmtpSendOutcome.NotSent);
                acknowledged.Should().Be(0);
                results[i].Exception.Should().BeAssignableTo<SmtpException>();
            }
        }
    }

    /// <summary>
    /// Moves the fake clock only while the server is silent on some connection (then a timeout is the only way on),
    /// two minutes at a time, and waits for that connection to close before moving it again; real work on the other
    /// connections never sees the clock jump (a condition, not a timing).
    /// </summary>
    private static async Task<T> DriveAsync<T>(Task<T> task, FakeTimeProvider time, HostileStepServer server)
    {
        for (var i = 0; i < 2000 && !task.IsCompleted; i++)
        {
            var silent = server.SilentNow;
            if (silent == 0)
            {
                await Task.Delay(5);
                continue;
            }

            time.Advance(TimeSpan.FromMinutes(2));
            for (var j = 0; j < 400 && !task.IsCompleted && server.SilentNow >= silent; j++)
            {
                await Task.Delay(5);
            }
        }

        return await task.Safe();
    }

    private static async Task RoundAsync(SmtpSender sender, string tag, List<(SmtpMessage Message, string MessageId)> messages, List<SmtpSendResult> results)
    {
        var round = Enumerable.Range(0, 4).Select(i => PoolTestMessages.Create(tag, i, bodyBytes: 512)).ToList();
        var sends = round.Select(m => sender.SendAsync(m.Message)).ToList();
        var done = await Task.WhenAll(sends).Safe();
        messages.AddRange(round);
        results.AddRange(done);
    }
}
