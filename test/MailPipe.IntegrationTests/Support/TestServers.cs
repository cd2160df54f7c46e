using System.Globalization;
using System.Net.Sockets;

namespace MailPipe.IntegrationTests.Support;

/// <summary>
/// Where the real servers started by build/servers/up-all.sh listen (127.0.0.1 only). Ports and paths can be moved with
/// the same environment variables the scripts take; build/test.sh exports them.
/// </summary>
public static class TestServers
{
    public const string Host = "127.0.0.1";
    public const string User = "testuser";
    public const string Password = "Test-Pass-123";

    public static int PostfixPort => Port("MAILPIPE_POSTFIX_PORT", 2525);
    public static int PostfixTlsPort => Port("MAILPIPE_POSTFIX_TLS_PORT", 4650);
    public static int PostfixSubmissionPort => Port("MAILPIPE_POSTFIX_SUBMISSION_PORT", 5870);
    public static int EximPort => Port("MAILPIPE_EXIM_PORT", 2526);
    public static int AiosmtpdPort => Port("MAILPIPE_AIOSMTPD_PORT", 2527);
    public static int SinkPort => Port("MAILPIPE_SINK_PORT", 2528);

    /// <summary>Postfix with smtpd_timeout=2s: an idle session gets a real 421.</summary>
    public static int PostfixIdlePort => Port("MAILPIPE_POSTFIX_IDLE_PORT", 2540);

    /// <summary>Postfix with smtpd_forbid_bare_newline = yes (no exclusions): a bare LF in data is refused.</summary>
    public static int PostfixStrictNewlinePort => Port("MAILPIPE_POSTFIX_STRICTNL_PORT", 2545);

    public static string TlsCertificate => Environment.GetEnvironmentVariable("MAILPIPE_TLS_CERT") ?? "/tmp/mailpipe-tls/cert.pem";
    public static string PostfixMaildir => Environment.GetEnvironmentVariable("MAILPIPE_MAILDIR") ?? "/tmp/mailpipe-maildir";
    public static string EximMaildir => Environment.GetEnvironmentVariable("MAILPIPE_EXIM_MAILDIR") ?? "/tmp/mailpipe-exim/maildir";
    public static string AiosmtpdMessages => Environment.GetEnvironmentVariable("MAILPIPE_AIOSMTPD_MESSAGES") ?? "/tmp/mailpipe-aiosmtpd/messages";

    /// <summary>A recipient address no other test uses, so its Maildir holds only this test's mail.</summary>
    public static string UniqueRecipient(string prefix = "t") => $"{prefix}-{Guid.NewGuid():N}@example.test";

    /// <summary>Fails loudly (never skips) when a server the test needs is not listening: build/test.sh starts them all.</summary>
    public static void RequireListening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(Host, port);
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException(
                $"No SMTP server listens on {Host}:{port}. Start the test servers first: sudo bash build/servers/up-all.sh (build/test.sh does it).", ex);
        }
    }

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : fallback;
}
