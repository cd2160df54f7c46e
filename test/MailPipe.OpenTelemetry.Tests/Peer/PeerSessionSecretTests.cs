using System.Diagnostics;
using System.Text;
using MailPipe.Extensions.Tests.Support;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.OpenTelemetry.Tests.Peer;

/// <summary>
/// Peer acceptance on a session of its own (no pool): an OAuth token given to XOAUTH2 or OAUTHBEARER (accepted or
/// refused) is in no span, metric or log line, even with LogAddresses; and a session's connection span ends at QUIT
/// with its transactions counted and no error.
/// </summary>
[Collection(nameof(ExporterCollection))]
[Trait("Category", "Integration")]
public sealed class PeerSessionSecretTests
{
    private const string Token = "peer-oauth-token-Zx81-secret";

    public static TheoryData<string, bool> Mechanisms => new()
    {
        { "XOAUTH2", true }, { "XOAUTH2", false }, { "OAUTHBEARER", true }, { "OAUTHBEARER", false },
    };

    [Theory]
    [MemberData(nameof(Mechanisms))]
    public async Task An_OAuth_token_is_in_no_span_metric_or_log_line(string mechanism, bool accepted)
    {
        await using var server = new LineServer(async (c, ct) =>
        {
            await c.SendAsync("220 peer.scripted ESMTP", ct);
            await c.ExpectAsync("EHLO", ct);
            await c.SendAsync("250-peer.scripted\r\n250 AUTH XOAUTH2 OAUTHBEARER", ct);
            await c.ExpectAsync("AUTH " + mechanism, ct);
            if (accepted)
            {
                await c.SendAsync("235 2.7.0 Accepted", ct);
            }
            else
            {
                await c.SendAsync("334 eyJzdGF0dXMiOiI0MDEifQ==", ct);
                await c.ExpectAsync(string.Empty, ct);
                await c.SendAsync("535 5.7.8 Invalid token", ct);
            }

            await c.ExpectAsync("QUIT", ct);
            await c.SendAsync("221 2.0.0 Bye", ct);
        });
        SmtpReply? reply = null;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var session = new AsyncSmtpSession(new SmtpSessionOptions { LoggerFactory = c.LoggerFactory, LogAddresses = true, AllowCleartextAuthentication = true });
            await session.ConnectAsync(TestServers.Host, server.Port, SmtpTlsMode.None, "client.peer-otel.test");
            ValueTask<string> Provide(CancellationToken _) => ValueTask.FromResult(Token);
            reply = mechanism == "XOAUTH2"
                ? await session.AuthXOAuth2Async("peer-user@example.test", Provide)
                : await session.AuthOAuthBearerAsync("peer-user@example.test", Provide);
        });

        reply!.Code.Should().Be(accepted ? 235 : 535);
        var auth = capture.SpansOn(server.Port, "smtp auth").Should().ContainSingle().Which;
        auth.GetTagItem("smtp.auth.mechanism").Should().Be(mechanism);
        auth.GetTagItem("error.type").Should().Be(accepted ? null : "535");
        capture.Logs.Should().NotBeEmpty();
        var base64 = new[] { Token, Convert.ToBase64String(Encoding.UTF8.GetBytes($"user=peer-user@example.test\u0001auth=Bearer {Token}\u0001\u0001")) };
        capture.TelemetryTexts().Concat(capture.Logs).Should().NotContain(t => base64.Any(b => t.Contains(b, StringComparison.Ordinal)) || t.Contains("Bearer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sessions_connection_span_ends_at_QUIT_with_its_transactions_and_no_error()
    {
        var port = TestServers.PostfixPort;
        var capture = await PeerCapture.RunAsync(async (c, _) =>
        {
            await using var session = new AsyncSmtpSession();
            await session.ConnectAsync(TestServers.Host, port, SmtpTlsMode.None, "client.peer-otel.test");
            for (var i = 0; i < 3; i++)
            {
                (await session.SendAsync(new SmtpEnvelope("peer-session@example.test", TestServers.UniqueRecipient("peer-session")), "Subject: s\r\n\r\nx\r\n"u8.ToArray())).IsAccepted.Should().BeTrue();
            }

            await session.DisconnectAsync();
        });

        var connection = capture.SpansOn(port, "smtp connection").Should().ContainSingle().Which;
        connection.GetTagItem("smtp.transactions").Should().Be(3);
        connection.GetTagItem("error.type").Should().BeNull();
        connection.Status.Should().Be(ActivityStatusCode.Unset);
        capture.SpansOn(port, "smtp transaction").Should().HaveCount(3).And.OnlyContain(t => t.Links.Single().Context.SpanId == connection.SpanId);
        capture.Sum("mailpipe.smtp.connection.duration", ("server.port", port)).Should().Be(1);
        capture.Points("mailpipe.sender.connection.opened").Should().BeEmpty("a session of its own is no pool");
    }
}
