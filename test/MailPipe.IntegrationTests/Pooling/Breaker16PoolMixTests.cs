using System.Text;
using MailPipe.IntegrationTests.Support;
using MailPipe.IntegrationTests.Tls;
using MailPipe.Tests.Shared;
using Xunit.Abstractions;

namespace MailPipe.IntegrationTests.Pooling;

/// <summary>
/// The shared sender with one coalesced batch mixing every kind of outcome (accepted, refused recipients, refused after
/// the data, content that fails midway or is slow, content over the server's SIZE, DSN and SMTPUTF8 needs), from 64
/// callers through one connection of Postfix 2525 (STARTTLS + AUTH): every result is checked against what Postfix stored.
/// </summary>
public sealed class Breaker16PoolMixTests(ITestOutputHelper output)
{
    private const string Sender = "sender@example.test";

    private enum Kind
    {
        Good,
        UnknownOnly,
        GoodAndUnknown,
        GoodAndTempfail,
        EodReject,
        EodTempfail,
        ThrowingStream,
        SlowStream,
        Dsn,
        Utf8,
        TooLargeStream,
    }

    public static TheoryData<bool, int, int> Settings => new()
    {
        { true, 16, 0 },
        { false, 16, 0 },
        { true, 1, 0 },
        { false, 4, 1 },
    };

    [Theory]
    [MemberData(nameof(Settings))]
    public async Task Sixty_four_callers_of_mixed_messages_through_one_connection_get_the_truth(bool chunking, int maxBatchSize, int maxMessagesPerConnection)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.StartTlsRequired,
            Credentials = new System.Net.NetworkCredential(TestServers.User, TestServers.Password),
            EhloName = "pool-mix.example.test",
            MaxConnections = 1,
            MaxBatchSize = maxBatchSize,
            MaxMessagesPerConnection = maxMessagesPerConnection,

            // All 64 wait from the start; with one message per connection the last one's turn comes after 63 STARTTLS + AUTH
            // connections, which a loaded Postfix did not open within the default 30 s (NotSent, TimedOut: true, but not
            // what this test is about). The test's 120 s "no caller may hang" bound stands instead.
            AcquireTimeout = Timeout.InfiniteTimeSpan,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);

        var kinds = Enum.GetValues<Kind>();
        var cases = Enumerable.Range(0, 64).Select(i => MakeCase(i, kinds[i % kinds.Length])).ToList();
        var tasks = cases.Select(c => Task.Run(() => sender.SendAsync(c.Message))).ToArray();
        var all = Task.WhenAll(tasks);
        (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))) == all).Should().BeTrue("no caller may hang");

        for (var i = 0; i < cases.Count; i++)
        {
            var (kind, _, good, bad, bytes) = cases[i];
            var result = await tasks[i];
            output.WriteLine($"{i} {kind}: {result.Outcome} {result.Exception?.Message}");
            var because = $"message {i} ({kind}): {result}";
            switch (kind)
            {
                case Kind.Good or Kind.SlowStream or Kind.Dsn or Kind.Utf8:
                    result.Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
                    result.AcceptedRecipients.Select(r => r.Address).Should().Equal([good], because);
                    break;
                case Kind.GoodAndUnknown or Kind.GoodAndTempfail:
                    result.Outcome.Should().Be(SmtpSendOutcome.Accepted, because);
                    result.AcceptedRecipients.Select(r => r.Address).Should().Equal([good], because);
                    result.RefusedRecipients.Single().Reply!.Code.Should().Be(kind == Kind.GoodAndUnknown ? 550 : 450, because);
                    break;
                case Kind.UnknownOnly:
                    result.Outcome.Should().Be(SmtpSendOutcome.Refused, because);
                    result.Recipients.Single().Reply!.Code.Should().Be(550, because);
                    break;
                case Kind.EodReject or Kind.EodTempfail:
                    result.Outcome.Should().Be(SmtpSendOutcome.Refused, because);
                    result.FinalReply!.Code.Should().Be(kind == Kind.EodReject ? 554 : 451, because);
                    break;
                case Kind.ThrowingStream:
                    result.Outcome.Should().Be(SmtpSendOutcome.NotSent, because);
                    result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.ContentReadFailed, because);
                    break;
                case Kind.TooLargeStream:
                    result.Outcome.Should().Be(SmtpSendOutcome.NotSent, because);
                    result.Exception.Should().BeOfType<SmtpException>().Which.ErrorCode.Should().Be(SmtpErrorCode.MessageTooLarge, because);
                    break;
            }

            result.Attempts.Should().Be(1, because);
            _ = bad;
            _ = bytes;
        }

        // What Postfix stored: each accepted message exactly once and whole, nothing of the others.
        foreach (var (kind, _, good, _, bytes) in cases.Where(c => c.Kind is Kind.Good or Kind.SlowStream or Kind.Dsn or Kind.Utf8 or Kind.GoodAndUnknown or Kind.GoodAndTempfail))
        {
            var stored = await Maildir.WaitForPostfixAsync(good, 1, TimeSpan.FromSeconds(120));
            Maildir.StripTraceHeaders(stored.Single()).Should().Equal(bytes, $"{kind} to {good} is stored whole");
        }

        await Task.Delay(TimeSpan.FromSeconds(2)); // the accepted ones are all there: the queue is drained
        foreach (var (kind, _, good, _, _) in cases)
        {
            var directory = Path.Combine(TestServers.PostfixMaildir, good, "new");
            var count = Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
            count.Should().Be(kind is Kind.Good or Kind.SlowStream or Kind.Dsn or Kind.Utf8 or Kind.GoodAndUnknown or Kind.GoodAndTempfail ? 1 : 0, $"{kind} to {good}");
        }

        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        statistics.Messages.Should().Be(64, "each message was handed to a session once");
        statistics.Retries.Should().Be(0);
        statistics.PendingRequests.Should().Be(0);
        statistics.InUse.Should().Be(0);
    }

    /// <summary>
    /// Postfix 2542 greets a 5th connection from one client with 421: a pool allowed 8 against it, with 64 callers and
    /// batches of 2 (so that it wants all 8), must still deliver every message exactly once (the waiting messages wait
    /// for the 4 connections that opened).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Sixty_four_callers_through_a_pool_of_8_against_a_limit_of_4_are_all_delivered_once(bool chunking)
    {
        var port = int.TryParse(Environment.GetEnvironmentVariable("MAILPIPE_POSTFIX_LIMIT4_PORT"), out var p) ? p : 2542;
        TestServers.RequireListening(port);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-limit4.example.test",
            MaxConnections = 8,
            MaxBatchSize = 2,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var recipients = Enumerable.Range(0, 64).Select(i => TestServers.UniqueRecipient($"limit4-{i}")).ToArray();
        var tasks = recipients.Select(r => Task.Run(() => sender.SendAsync(new SmtpEnvelope(Sender, r), Encoding.ASCII.GetBytes($"Subject: {r}\r\n\r\nHello.\r\n")))).ToArray();
        var all = Task.WhenAll(tasks);
        (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))) == all).Should().BeTrue("no caller may hang");

        var results = await all;
        var statistics = sender.GetStatistics();
        output.WriteLine(statistics.ToString());
        results.Should().OnlyContain(r => r.IsAccepted, string.Join(" | ", results.Where(r => !r.IsAccepted).Select(r => r.ToString())));
        foreach (var r in recipients)
        {
            (await Maildir.WaitForPostfixAsync(r, 1, TimeSpan.FromSeconds(120))).Should().HaveCount(1);
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        recipients.Should().OnlyContain(r => Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, r, "new")).Length == 1, "nothing is delivered twice");
    }

    /// <summary>
    /// Postfix answers the 1001st RCPT of a transaction with 452 4.5.3 (too many recipients, smtpd_recipient_limit):
    /// in a coalesced batch that message is Accepted for the 1000 recipients taken and says which one was refused
    /// (transiently); the messages batched with it are untouched, and each is stored once.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_message_over_the_recipient_limit_in_a_batch_gets_452_for_the_excess_only(bool chunking)
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = TestServers.PostfixPort,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-452.example.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var many = TestServers.UniqueRecipient("rcpt452");
        var excess = TestServers.UniqueRecipient("rcpt452-excess");
        var others = Enumerable.Range(0, 6).Select(i => TestServers.UniqueRecipient($"rcpt452-other{i}")).ToArray();
        // The same address 1000 times (Postfix stores it once), then one more: the 1001st RCPT.
        var big = new SmtpEnvelope(Sender, [.. Enumerable.Repeat(many, 1000), excess]);
        var sends = new List<Task<SmtpSendResult>>();
        for (var i = 0; i < others.Length; i++)
        {
            if (i == 3)
            {
                sends.Add(sender.SendAsync(big, Encoding.ASCII.GetBytes("Subject: 1001 recipients\r\n\r\nHello.\r\n")));
            }

            sends.Add(sender.SendAsync(new SmtpEnvelope(Sender, others[i]), Encoding.ASCII.GetBytes($"Subject: {others[i]}\r\n\r\nHello.\r\n")));
        }

        var all = Task.WhenAll(sends);
        (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))) == all).Should().BeTrue("no caller may hang");
        var results = await all;

        var bigResult = results[3];
        bigResult.Outcome.Should().Be(SmtpSendOutcome.Accepted, bigResult.ToString());
        bigResult.Recipients.Should().HaveCount(1001);
        bigResult.Recipients.Take(1000).Should().OnlyContain(r => r.Accepted);
        var refused = bigResult.Recipients[1000];
        refused.Recipient.Address.Should().Be(excess);
        refused.Reply!.Code.Should().Be(452, refused.Reply.ToString());
        refused.Reply.IsTransientNegative.Should().BeTrue();
        results.Where((_, i) => i != 3).Should().OnlyContain(r => r.IsAccepted);
        (await Maildir.WaitForPostfixAsync(many, 1, TimeSpan.FromSeconds(120))).Should().HaveCount(1);
        foreach (var other in others)
        {
            (await Maildir.WaitForPostfixAsync(other, 1, TimeSpan.FromSeconds(120))).Should().HaveCount(1);
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        Directory.Exists(Path.Combine(TestServers.PostfixMaildir, excess)).Should().BeFalse("the recipient refused with 452 got nothing");
        Directory.GetFiles(Path.Combine(TestServers.PostfixMaildir, many, "new")).Should().HaveCount(1);
    }

    /// <summary>
    /// Postfix 2543 (no 8BITMIME) and 2544 (no SMTPUTF8): in a coalesced batch, the messages that need the missing
    /// extension are NotSent (ExtensionNotSupported, nothing stored) and the others batched with them are delivered once.
    /// </summary>
    [Theory]
    [InlineData("MAILPIPE_POSTFIX_NO8BITMIME_PORT", 2543, true)]
    [InlineData("MAILPIPE_POSTFIX_NO8BITMIME_PORT", 2543, false)]
    [InlineData("MAILPIPE_POSTFIX_NOSMTPUTF8_PORT", 2544, true)]
    [InlineData("MAILPIPE_POSTFIX_NOSMTPUTF8_PORT", 2544, false)]
    public async Task Messages_needing_an_extension_the_server_lacks_are_NotSent_and_the_rest_of_the_batch_delivered(string variable, int fallback, bool chunking)
    {
        var port = int.TryParse(Environment.GetEnvironmentVariable(variable), out var p) ? p : fallback;
        TestServers.RequireListening(port);
        await using var sender = new SmtpSender(new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = SmtpTlsMode.None,
            EhloName = "pool-ext.example.test",
            MaxConnections = 1,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        });
        var cases = Enumerable.Range(0, 24).Select(i =>
        {
            var needs = i % 3 == 1;
            var recipient = needs && fallback == 2544 ? $"ext-ü-{Guid.NewGuid():N}@example.test" : TestServers.UniqueRecipient($"ext{i}");
            var envelope = new SmtpEnvelope(Sender, recipient);
            var body = Encoding.UTF8.GetBytes($"Subject: ext {i}\r\n\r\n{new string('x', 20_000)}\r\n{(needs && fallback == 2543 ? "Grüße" : "Hello")}.\r\n");

            // On 2543 half of the 8-bit messages are streamed: refused at their first 8-bit octet, midway.
            return (Needs: needs, Recipient: recipient, Send: i % 6 == 1
                ? Task.Run(() => sender.SendAsync(envelope, (Stream)new NonSeekable(body)))
                : Task.Run(() => sender.SendAsync(envelope, body)));
        }).ToList();

        var all = Task.WhenAll(cases.Select(c => c.Send));
        (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))) == all).Should().BeTrue("no caller may hang");
        foreach (var (needs, recipient, send) in cases)
        {
            var result = await send;
            if (needs)
            {
                result.Outcome.Should().Be(SmtpSendOutcome.NotSent, result.ToString());
            }
            else
            {
                result.IsAccepted.Should().BeTrue(result.ToString());
                (await Maildir.WaitForPostfixAsync(recipient, 1, TimeSpan.FromSeconds(120))).Should().HaveCount(1);
            }
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        cases.Where(c => c.Needs).Should().OnlyContain(c => !Directory.Exists(Path.Combine(TestServers.PostfixMaildir, c.Recipient)));
    }

    /// <summary>
    /// 64 callers over STARTTLS + AUTH (Postfix 2525) or implicit TLS (4650), a third of them cancelling at random
    /// moments (one token source shared by several), with large and small messages: every outcome a caller learns
    /// is what Postfix stored (Accepted once, cancelled before the end of data never, Unknown at most once).
    /// </summary>
    [Theory]
    [InlineData(false, true)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task A_cancellation_storm_over_TLS_tells_the_truth(bool implicitTls, bool chunking)
    {
        var port = implicitTls ? TestServers.PostfixTlsPort : TestServers.PostfixPort;
        TestServers.RequireListening(port);
        var options = new SmtpSenderOptions
        {
            Host = TestServers.Host,
            Port = port,
            TlsMode = implicitTls ? SmtpTlsMode.Implicit : SmtpTlsMode.StartTlsRequired,
            Credentials = new System.Net.NetworkCredential(TestServers.User, TestServers.Password),
            EhloName = "pool-storm.example.test",
            MaxConnections = 3,
            MaxBatchSize = 8,
            Session = new SmtpSessionOptions { UseChunking = chunking },
        };
        options.Tls.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        await using var sender = new SmtpSender(options);
        var random = new Random(implicitTls ? 7 : chunking ? 11 : 13);
        using var shared = new CancellationTokenSource();
        var own = new List<CancellationTokenSource>();
        var cases = new List<(string Recipient, int Mode, Task<SmtpSendResult> Send)>();
        for (var i = 0; i < 64; i++)
        {
            var recipient = TestServers.UniqueRecipient($"storm{i}");
            var body = Encoding.ASCII.GetBytes($"Subject: storm {i}\r\n\r\n" + string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog.\r\n", random.Next(4) == 0 ? 20_000 : 3)));
            var mode = random.Next(3);
            CancellationToken token = default;
            if (mode == 1)
            {
                token = shared.Token;
            }
            else if (mode == 2)
            {
                var cts = new CancellationTokenSource(random.Next(1, 500));
                own.Add(cts);
                token = cts.Token;
            }

            cases.Add((recipient, mode, sender.SendAsync(new SmtpEnvelope(Sender, recipient), body, token)));
        }

        shared.CancelAfter(random.Next(100, 300));
        var all = Task.WhenAll(cases.Select(c => c.Send.ContinueWith(_ => 0, TaskScheduler.Default)));
        (await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))) == all).Should().BeTrue("no caller may hang");

        var expected = new Dictionary<string, (int Min, int Max)>();
        foreach (var (recipient, mode, send) in cases)
        {
            var result = send.IsCompletedSuccessfully ? await send : null;
            var what = $"{recipient} (mode {mode}, {send.Status}): {(result is not null ? result.ToString() : send.Exception?.InnerException?.Message)}";
            output.WriteLine(what);
            if (result is not null)
            {
                expected[recipient] = result.Outcome switch
                {
                    SmtpSendOutcome.Accepted => (1, 1),
                    SmtpSendOutcome.Unknown => (0, 1),
                    _ => (0, 0),
                };
                if (mode == 0)
                {
                    result.IsAccepted.Should().BeTrue(what);
                }
            }
            else
            {
                mode.Should().NotBe(0, what);
                var ex = send.Exception?.InnerException;
                if (ex is null)
                {
                    expected[recipient] = (0, 0); // cancelled before it was taken
                }
                else
                {
                    ex.Should().BeAssignableTo<OperationCanceledException>(what);
                    expected[recipient] = ex is SmtpOutcomeUnknownException ? (0, 1) : (0, 0);
                }
            }
        }

        foreach (var (recipient, (min, _)) in expected.Where(e => e.Value.Min == 1))
        {
            (await Maildir.WaitForPostfixAsync(recipient, 1, TimeSpan.FromSeconds(120))).Should().HaveCount(1);
        }

        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var (recipient, (min, max)) in expected)
        {
            var directory = Path.Combine(TestServers.PostfixMaildir, recipient, "new");
            var count = Directory.Exists(directory) ? Directory.GetFiles(directory).Length : 0;
            count.Should().BeInRange(min, max, recipient);
        }

        foreach (var cts in own)
        {
            cts.Dispose();
        }
    }

    private static (Kind Kind, SmtpMessage Message, string Good, string? Bad, byte[] Bytes) MakeCase(int i, Kind kind)
    {
        var tag = $"mix{i}-{kind}".ToLowerInvariant();
        var good = kind == Kind.Utf8 ? $"{tag}-ünï-{Guid.NewGuid():N}@example.test" : TestServers.UniqueRecipient(tag);
        var text = new StringBuilder($"From: {Sender}\r\nTo: {good}\r\nSubject: {tag}\r\nMessage-Id: <{tag}-{Guid.NewGuid():N}@example.test>\r\n\r\n");
        var lines = kind is Kind.ThrowingStream or Kind.SlowStream ? 4000 : 3;
        for (var l = 0; l < lines; l++)
        {
            text.Append(CultureInfo(l)).Append(" the quick brown fox jumps over the lazy dog.\r\n");
        }

        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        string? bad = null;
        SmtpEnvelope envelope;
        switch (kind)
        {
            case Kind.UnknownOnly:
                envelope = new SmtpEnvelope(Sender, bad = $"unknown-{Guid.NewGuid():N}@example.test");
                good = bad;
                break;
            case Kind.GoodAndUnknown:
                envelope = new SmtpEnvelope(Sender, good, bad = $"nosuch-{Guid.NewGuid():N}@example.test");
                break;
            case Kind.GoodAndTempfail:
                envelope = new SmtpEnvelope(Sender, bad = "tempfail@example.test", good);
                break;
            case Kind.EodReject:
                envelope = new SmtpEnvelope("eod-reject@example.test", good);
                break;
            case Kind.EodTempfail:
                envelope = new SmtpEnvelope("eod-tempfail@example.test", good);
                break;
            case Kind.Dsn:
                envelope = new SmtpEnvelope(Sender, [new SmtpRecipient(good) { Notify = DsnNotify.Failure | DsnNotify.Delay, OriginalRecipient = good }]) { Return = DsnReturn.Headers, EnvelopeId = $"env-{i}" };
                break;
            case Kind.Utf8:
                envelope = new SmtpEnvelope(Sender, good) { SmtpUtf8 = true, Body = SmtpBodyType.EightBitMime };
                break;
            default:
                envelope = new SmtpEnvelope(Sender, good);
                break;
        }

        var message = kind switch
        {
            Kind.ThrowingStream => SmtpMessage.FromStream(envelope, new TrickleStream(bytes, throwAfter: bytes.Length / 2, delay: TimeSpan.Zero)),
            Kind.SlowStream => SmtpMessage.FromStream(envelope, new TrickleStream(bytes, throwAfter: -1, delay: TimeSpan.FromMilliseconds(5))),
            Kind.TooLargeStream => SmtpMessage.FromStream(envelope, new GeneratedContentStream(bytes, 11 * 1024 * 1024)),
            _ => SmtpMessage.FromBytes(envelope, bytes),
        };
        return (kind, message, good, bad, bytes);
    }

    private static string CultureInfo(int line) => line.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A read-only stream that cannot seek.</summary>
    private sealed class NonSeekable(byte[] data) : MemoryStream(data, writable: false)
    {
        public override bool CanSeek => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override long Seek(long offset, SeekOrigin loc) => throw new NotSupportedException();
    }

    /// <summary>Non-seekable content read in 4 KiB pieces, each after <c>delay</c>; throws once <c>throwAfter</c> bytes were read (-1: never).</summary>
    private sealed class TrickleStream(byte[] data, int throwAfter, TimeSpan delay) : ForwardOnlyStream
    {
        private int _position;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, cancellationToken);
            }

            if (throwAfter >= 0 && _position >= throwAfter)
            {
                throw new IOException("The source failed midway.");
            }

            var n = Math.Min(Math.Min(buffer.Length, 4096), data.Length - _position);
            data.AsMemory(_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
