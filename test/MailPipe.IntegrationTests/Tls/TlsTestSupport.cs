using System.Text;
using System.Text.Json;
using MailPipe.IntegrationTests.Support;

namespace MailPipe.IntegrationTests.Tls;

/// <summary>Shared steps of the TLS and AUTH integration tests.</summary>
public static class TlsTestSupport
{
    public const string EhloDomain = "client.test";
    public const string Sender = "sender@example.test";

    /// <summary>TLS settings that trust the test servers' self-signed certificate (the CLI's --ca-file).</summary>
    public static SmtpTlsOptions TrustTestCertificate()
    {
        var options = new SmtpTlsOptions();
        options.AddTrustedRootCertificatesFromPemFile(TestServers.TlsCertificate);
        return options;
    }

    public static AsyncSmtpSession NewSession(SmtpTlsOptions? tls = null, bool allowCleartext = false) => new(new SmtpSessionOptions
    {
        Tls = tls ?? TrustTestCertificate(),
        AllowCleartextAuthentication = allowCleartext,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ReceiveTimeout = TimeSpan.FromSeconds(30),
    });

    /// <summary>MAIL, RCPT, DATA and a small message; every reply must be positive.</summary>
    public static async Task<string> SendTestMessageAsync(AsyncSmtpSession session, string recipient, string subject)
    {
        (await session.MailFromAsync(Sender)).Code.Should().Be(250);
        var rcpt = await session.RcptToAsync(recipient);
        rcpt.Code.Should().Be(250, rcpt.ToString());
        (await session.DataAsync()).Code.Should().Be(354);
        var message = $"From: <{Sender}>\r\nTo: <{recipient}>\r\nSubject: {subject}\r\n\r\nSent by the MailPipe TLS/AUTH integration tests.\r\n";
        var reply = await session.SendMessageDataAsync(Encoding.UTF8.GetBytes(message));
        reply.Code.Should().Be(250, reply.ToString());
        return message;
    }

    /// <summary>Waits for Postfix's copy and returns it as text (with the trace headers).</summary>
    public static async Task<string> WaitForPostfixAsync(string recipient)
    {
        var files = await Maildir.WaitForPostfixAsync(recipient);
        return Encoding.UTF8.GetString(files[0]);
    }

    /// <summary>Waits for aiosmtpd's JSON record of a message to <paramref name="recipient"/>.</summary>
    public static async Task<JsonElement> WaitForAiosmtpdAsync(string recipient, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (true)
        {
            if (Directory.Exists(TestServers.AiosmtpdMessages))
            {
                foreach (var file in Directory.GetFiles(TestServers.AiosmtpdMessages, "*.json"))
                {
                    var json = JsonDocument.Parse(await File.ReadAllTextAsync(file)).RootElement;
                    if (json.GetProperty("rcpt_tos").EnumerateArray().Any(r => r.GetString() == recipient))
                    {
                        return json;
                    }
                }
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"aiosmtpd stored no message for {recipient} in {TestServers.AiosmtpdMessages}.");
            }

            await Task.Delay(50);
        }
    }
}
