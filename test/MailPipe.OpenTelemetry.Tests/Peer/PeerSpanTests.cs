using System.Diagnostics;
using System.Net;
using System.Text;
using MailPipe.IntegrationTests.Support;
using static MailPipe.OpenTelemetry.Tests.Peer.PeerOptions;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// Peer acceptance of MailPipe.OpenTelemetry's span table and instrument dimensions against the real servers, through
/// the pooled sender, as the SDK's in-memory exporters see them: a plain send (BDAT and DATA), refusals (450, 550, 554
/// after the data, 552 to MAIL), implicit TLS and STARTTLS, AUTH with each mechanism and a refused one, a closed port.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerSpanTests
{
    private const string Subject = "peer-otel-secret-subject";
    private const string Body = "peer-otel-secret-body-text";

    private static byte[] Content(string extra = "") => Encoding.ASCII.GetBytes($"Subject: {Subject}\r\n\r\n{Body}\r\n{extra}");

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Two_accepted_sends_on_one_connection_have_every_documented_attribute_and_count(bool chunking)
    {
        var port = TestServers.PostfixPort;
        var content = Content(".a line that is dot-stuffed\r\n");
        var recipients = new[] { TestServers.UniqueRecipient("peer-otel-a"), TestServers.UniqueRecipient("peer-otel-b") };
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port, chunking: chunking));
            for (var i = 0; i < 2; i++)
            {
                (await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", recipients), content)).IsAccepted.Should().BeTrue();
            }
        });

        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        connection.Kind.Should().Be(ActivityKind.Client);
        connection.ParentSpanId.Should().Be(default(ActivitySpanId));
        connection.GetTagItem("server.address").Should().Be(TestServers.Host);
        connection.GetTagItem("network.protocol.name").Should().Be("smtp");
        connection.GetTagItem("network.peer.address").Should().Be("127.0.0.1");
        connection.GetTagItem("network.peer.port").Should().Be(port);
        connection.GetTagItem("smtp.transactions").Should().Be(2);
        connection.GetTagItem("tls.protocol.version").Should().BeNull("no TLS on this connection");
        connection.GetTagItem("error.type").Should().BeNull();
        connection.Status.Should().Be(ActivityStatusCode.Unset);
        var connect = capture.SpansOn(port, "smtp connect").Should().ContainSingle().Which;
        connect.ParentSpanId.Should().Be(connection.SpanId);
        connect.Kind.Should().Be(ActivityKind.Client);
        connect.GetTagItem("network.protocol.name").Should().Be("smtp");
        capture.SpansOn(port, "smtp tls").Should().BeEmpty();
        capture.SpansOn(port, "smtp auth").Should().BeEmpty();

        var transactions = capture.SpansOn(port, "smtp transaction").ToList();
        transactions.Should().HaveCount(2);
        foreach (var tx in transactions)
        {
            tx.Kind.Should().Be(ActivityKind.Client);
            tx.ParentSpanId.Should().Be(default(ActivitySpanId), "a root when the caller had no activity");
            tx.Links.Should().ContainSingle().Which.Context.SpanId.Should().Be(connection.SpanId);
            tx.GetTagItem("server.address").Should().Be(TestServers.Host);
            tx.GetTagItem("network.protocol.name").Should().Be("smtp");
            tx.GetTagItem("smtp.transfer").Should().Be(chunking ? "BDAT" : "DATA");
            tx.GetTagItem("smtp.recipients").Should().Be(2);
            tx.GetTagItem("smtp.recipients.accepted").Should().Be(2);
            tx.GetTagItem("smtp.recipients.refused").Should().Be(0);
            tx.GetTagItem("smtp.outcome").Should().Be("accepted");
            tx.GetTagItem("smtp.reply.code").Should().Be(250);
            tx.GetTagItem("smtp.reply.enhanced_status_code").Should().Be("2.0.0");
            Convert.ToInt64(tx.GetTagItem("smtp.round_trips"), System.Globalization.CultureInfo.InvariantCulture).Should().BePositive();
            Convert.ToInt64(tx.GetTagItem("smtp.message.bytes"), System.Globalization.CultureInfo.InvariantCulture).Should().Be(content.Length, "content as given, before dot-stuffing");
            tx.GetTagItem("error.type").Should().BeNull();
            tx.GetTagItem("smtp.mail_from").Should().BeNull("addresses only with LogAddresses");
            tx.GetTagItem("smtp.rcpt_to").Should().BeNull();
            tx.Status.Should().Be(ActivityStatusCode.Unset);
        }

        var server = new (string, object?)[] { ("server.address", TestServers.Host), ("server.port", port) };
        capture.Sum("mailpipe.smtp.messages", [.. server, ("smtp.outcome", "accepted")]).Should().Be(2);
        capture.Points("mailpipe.smtp.messages").Where(p => PeerCapture.Has(p, "server.port", port))
            .Should().OnlyContain(p => !PeerCapture.Tags(p).ContainsKey("error.type"), "error.type only unless accepted");
        capture.Sum("mailpipe.smtp.recipients", [.. server, ("smtp.recipient.status", "accepted")]).Should().Be(4);
        capture.Sum("mailpipe.smtp.bytes_sent", server).Should().Be(2 * content.Length);
        capture.Sum("mailpipe.smtp.transaction.duration", [.. server, ("smtp.outcome", "accepted")]).Should().Be(2);
        capture.Sum("mailpipe.smtp.connection.duration", server).Should().Be(1);
        capture.Sum("mailpipe.smtp.connect.duration", server).Should().Be(1);
    }

    [Fact]
    public async Task A_450_refused_recipient_beside_an_accepted_one_is_accepted_and_counted_refused_in_recipients()
    {
        var port = TestServers.PostfixPort;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port));
            var result = await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", "tempfail@example.test", TestServers.UniqueRecipient("peer-otel-partial")), Content());
            result.Outcome.Should().Be(SmtpSendOutcome.Accepted);
        });

        var tx = capture.SpansOn(port, "smtp transaction").Should().ContainSingle().Which;
        tx.GetTagItem("smtp.outcome").Should().Be("accepted");
        tx.GetTagItem("smtp.recipients.accepted").Should().Be(1);
        tx.GetTagItem("smtp.recipients.refused").Should().Be(1);
        tx.GetTagItem("smtp.reply.code").Should().Be(250, "the end of data's reply decides");
        tx.GetTagItem("error.type").Should().BeNull();
        capture.Sum("mailpipe.smtp.recipients", ("server.port", port), ("smtp.recipient.status", "refused")).Should().Be(1);
        capture.Sum("mailpipe.smtp.recipients", ("server.port", port), ("smtp.recipient.status", "accepted")).Should().Be(1);
    }

    public static TheoryData<string, string, int, string> Refusals => new()
    {
        { "tempfail", "tempfail@example.test", 450, "4.2.0" },
        { "unknown", "unknown-peer-otel@example.test", 550, "5.1.1" },
        { "eod-reject", "eod-reject@example.test", 554, "5.7.1" },
        { "eod-tempfail", "eod-tempfail@example.test", 451, "4.3.0" },
        { "size", "size", 552, "5.3.4" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task A_refused_transaction_has_the_deciding_reply_and_error_type_on_its_span_and_its_metrics(string name, string address, int code, string enhanced)
    {
        var port = TestServers.PostfixPort;
        var content = Content();
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port));
            var envelope = name switch
            {
                "eod-reject" or "eod-tempfail" => new SmtpEnvelope(address, TestServers.UniqueRecipient("peer-otel-eod")),
                "size" => new SmtpEnvelope("peer-otel@example.test", TestServers.UniqueRecipient("peer-otel-size")) { Size = 20_000_000 },
                _ => new SmtpEnvelope("peer-otel@example.test", address),
            };
            var result = await sender.SendAsync(envelope, content);
            result.Outcome.Should().Be(name == "size" ? SmtpSendOutcome.NotSent : SmtpSendOutcome.Refused, result.ToString());
        });

        // A SIZE over the server's limit is not even offered: NotSent (MessageTooLarge) before MAIL, on the connection that took it.
        var outcome = name == "size" ? "not_sent" : "refused";
        var errorType = name == "size" ? "MessageTooLarge" : code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var tx = capture.SpansOn(port, "smtp transaction").Should().ContainSingle().Which;
        tx.Status.Should().Be(ActivityStatusCode.Error);
        tx.GetTagItem("smtp.outcome").Should().Be(outcome);
        tx.GetTagItem("error.type").Should().Be(errorType);
        if (name != "size")
        {
            tx.GetTagItem("smtp.reply.code").Should().Be(code);
            tx.GetTagItem("smtp.reply.enhanced_status_code").Should().Be(enhanced);
        }

        capture.Sum("mailpipe.smtp.messages", ("server.port", port), ("smtp.outcome", outcome), ("error.type", errorType)).Should().Be(1);
        capture.Sum("mailpipe.smtp.transaction.duration", ("server.port", port), ("smtp.outcome", outcome), ("error.type", errorType)).Should().Be(1);
        if (name.StartsWith("eod", StringComparison.Ordinal))
        {
            tx.GetTagItem("smtp.recipients.accepted").Should().Be(1);
            capture.Sum("mailpipe.smtp.bytes_sent", ("server.port", port)).Should().Be(content.Length, "the end of data was written");
        }
        else if (name == "size")
        {
            capture.Sum("mailpipe.smtp.bytes_sent", ("server.port", port)).Should().Be(0, "no end of data was written");
        }
        else
        {
            tx.GetTagItem("smtp.recipients.refused").Should().Be(1);
            capture.Sum("mailpipe.smtp.recipients", ("server.port", port), ("smtp.recipient.status", "refused")).Should().Be(1);
        }
    }

    [Theory]
    [InlineData(SmtpTlsMode.Implicit)]
    [InlineData(SmtpTlsMode.StartTlsRequired)]
    public async Task A_TLS_connection_has_a_tls_span_with_the_protocol_and_the_connection_span_its_version(SmtpTlsMode mode)
    {
        var port = mode == SmtpTlsMode.Implicit ? TestServers.PostfixTlsPort : TestServers.PostfixPort;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Tls(port, mode));
            (await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", TestServers.UniqueRecipient("peer-otel-tls")), Content())).IsAccepted.Should().BeTrue();
        });

        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        var tls = capture.SpansOn(port, "smtp tls").Should().ContainSingle().Which;
        tls.ParentSpanId.Should().Be(connection.SpanId);
        tls.Kind.Should().Be(ActivityKind.Client);
        tls.GetTagItem("server.address").Should().Be(TestServers.Host);
        tls.GetTagItem("network.protocol.name").Should().Be("smtp");
        tls.GetTagItem("tls.protocol.name").Should().Be("tls");
        tls.GetTagItem("tls.protocol.version").Should().BeOneOf("1.2", "1.3");
        tls.Status.Should().Be(ActivityStatusCode.Unset);
        connection.GetTagItem("tls.protocol.version").Should().Be(tls.GetTagItem("tls.protocol.version"));
        capture.Sum("mailpipe.smtp.tls.duration", ("server.port", port)).Should().Be(1);
        capture.Points("mailpipe.smtp.tls.duration").Where(p => PeerCapture.Has(p, "server.port", port)).Should().OnlyContain(p => !PeerCapture.Tags(p).ContainsKey("error.type"));
        capture.Sum("mailpipe.smtp.tls.failures", ("server.port", port)).Should().Be(0);
    }

    [Theory]
    [InlineData("PLAIN")]
    [InlineData("LOGIN")]
    [InlineData("CRAM-MD5")]
    [InlineData("SCRAM-SHA-256")]
    public async Task An_AUTH_has_its_mechanism_and_235_on_the_auth_span_and_the_password_is_nowhere(string mechanism)
    {
        var port = TestServers.PostfixPort;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            var options = Tls(port, SmtpTlsMode.StartTlsRequired, c.LoggerFactory);
            options.Credentials = new NetworkCredential(TestServers.User, TestServers.Password);
            options.Authentication = new SmtpAuthenticationOptions { Mechanism = mechanism };
            await using var sender = new SmtpSender(options);
            (await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", TestServers.UniqueRecipient("peer-otel-auth")), Content())).IsAccepted.Should().BeTrue();
        });

        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        var auth = capture.SpansOn(port, "smtp auth").Should().ContainSingle().Which;
        auth.ParentSpanId.Should().Be(connection.SpanId);
        auth.Kind.Should().Be(ActivityKind.Client);
        auth.GetTagItem("smtp.auth.mechanism").Should().Be(mechanism);
        auth.GetTagItem("smtp.reply.code").Should().Be(235);
        auth.GetTagItem("network.protocol.name").Should().Be("smtp");
        auth.GetTagItem("error.type").Should().BeNull();
        capture.Sum("mailpipe.smtp.auth.duration", ("server.port", port)).Should().Be(1);
        AssertNoSecret(capture, TestServers.Password);
    }

    [Fact]
    public async Task A_refused_AUTH_marks_the_auth_and_connection_spans_counts_a_failure_and_never_shows_the_password()
    {
        const string Wrong = "Peer-Wrong-Pass-987";
        var port = TestServers.PostfixPort;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            var options = Tls(port, SmtpTlsMode.StartTlsRequired, c.LoggerFactory);
            options.Credentials = new NetworkCredential(TestServers.User, Wrong);
            options.Authentication = new SmtpAuthenticationOptions { Mechanism = "PLAIN" };
            await using var sender = new SmtpSender(options);
            var result = await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", TestServers.UniqueRecipient("peer-otel-badauth")), Content());
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        });

        var auth = capture.SpansOn(port, "smtp auth").Should().ContainSingle().Which;
        auth.GetTagItem("error.type").Should().Be("535");
        auth.GetTagItem("smtp.reply.code").Should().Be(535);
        auth.Status.Should().Be(ActivityStatusCode.Error);
        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        connection.GetTagItem("error.type").Should().NotBeNull("the connection failed to open");
        connection.Status.Should().Be(ActivityStatusCode.Error);
        capture.SpansOn(port, "smtp transaction").Should().BeEmpty();
        capture.Sum("mailpipe.smtp.auth.failures", ("server.port", port), ("error.type", "535")).Should().Be(1);
        capture.Sum("mailpipe.smtp.auth.duration", ("server.port", port), ("error.type", "535")).Should().Be(1);
        capture.Sum("mailpipe.sender.connection.open_failures").Should().Be(1);
        capture.Points("mailpipe.smtp.messages").Where(p => PeerCapture.Has(p, "server.port", port)).Should().BeEmpty();
        AssertNoSecret(capture, Wrong);
    }

    [Fact]
    public async Task A_closed_port_counts_a_connect_failure_with_ConnectionRefused_and_no_message()
    {
        var port = FreePort();
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port));
            var result = await sender.SendAsync(new SmtpEnvelope("peer-otel@example.test", "x@example.test"), Content());
            result.Outcome.Should().Be(SmtpSendOutcome.NotSent);
        });

        var connect = capture.SpansOn(port, "smtp connect").Should().ContainSingle().Which;
        connect.GetTagItem("error.type").Should().Be("ConnectionRefused");
        connect.Status.Should().Be(ActivityStatusCode.Error);
        capture.Sum("mailpipe.smtp.connect.failures", ("server.port", port), ("error.type", "ConnectionRefused")).Should().Be(1);
        capture.Sum("mailpipe.smtp.connect.duration", ("server.port", port), ("error.type", "ConnectionRefused")).Should().Be(1);
        capture.Sum("mailpipe.sender.connection.open_failures").Should().Be(1);
        capture.Sum("mailpipe.sender.connection.opened").Should().Be(0);
        capture.SpansOn(port, "smtp transaction").Should().BeEmpty();
        capture.Points("mailpipe.smtp.messages").Where(p => PeerCapture.Has(p, "server.port", port)).Should().BeEmpty();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Addresses_are_on_the_transaction_span_only_with_LogAddresses_never_in_metrics_and_the_content_never(bool logAddresses)
    {
        var port = TestServers.PostfixPort;
        var recipient = TestServers.UniqueRecipient("peer-otel-la");
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var sender = new SmtpSender(Plain(port, c.LoggerFactory, logAddresses: logAddresses));
            (await sender.SendAsync(new SmtpEnvelope("peer-otel-from@example.test", recipient, "tempfail@example.test"), Content())).IsAccepted.Should().BeTrue();
        });

        var tx = capture.SpansOn(port, "smtp transaction").Should().ContainSingle().Which;
        if (logAddresses)
        {
            tx.GetTagItem("smtp.mail_from").Should().Be("peer-otel-from@example.test");
            tx.GetTagItem("smtp.rcpt_to")!.ToString().Should().Contain(recipient);
        }
        else
        {
            tx.GetTagItem("smtp.mail_from").Should().BeNull();
            tx.GetTagItem("smtp.rcpt_to").Should().BeNull();
            capture.TelemetryTexts().Should().NotContain(t => t.Contains('@'), "no span, event, link, baggage or dimension holds an address");
            capture.Logs.Should().NotContain(l => l.Contains(recipient, StringComparison.OrdinalIgnoreCase), "the transcript log holds addresses only with LogAddresses");
        }

        foreach (var metric in capture.Metrics)
        {
            foreach (var point in metric.MetricPoints)
            {
                PeerCapture.Tags(point).Values.Should().NotContain(v => (v as string ?? string.Empty).Contains('@'), metric.Name);
            }
        }

        capture.TelemetryTexts().Concat(capture.Logs).Should().NotContain(t => t.Contains(Subject, StringComparison.Ordinal) || t.Contains(Body, StringComparison.Ordinal), "no message content in telemetry or logs");
    }

    internal static void AssertNoSecret(PeerCapture capture, string password)
    {
        var plain = Convert.ToBase64String(Encoding.UTF8.GetBytes($"\0{TestServers.User}\0{password}"));
        var login = Convert.ToBase64String(Encoding.UTF8.GetBytes(password));
        capture.Logs.Should().NotBeEmpty("the logger factory was given to the sender and its sessions");
        capture.TelemetryTexts().Concat(capture.Logs).Should().NotContain(
            t => t.Contains(password, StringComparison.Ordinal) || t.Contains(plain, StringComparison.Ordinal) || t.Contains(login, StringComparison.Ordinal),
            "no password, nor its base64, in a span, a metric or a log");
    }
}
