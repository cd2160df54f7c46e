using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace MailPipe.Extensions.Tests.Support;

/// <summary>The shared loopback servers of build/servers (ports from the environment build/test.sh exports).</summary>
public static class TestServers
{
    public const string Host = "127.0.0.1";

    public static int PostfixPort => Port("MAILPIPE_POSTFIX_PORT", 2525);

    /// <summary>Postfix with smtpd_client_connection_count_limit = 4 and no loopback exception: a 5th connection is refused.</summary>
    public static int PostfixLimit4Port => Port("MAILPIPE_POSTFIX_LIMIT4_PORT", 2542);

    public static string TlsCertificate => Environment.GetEnvironmentVariable("MAILPIPE_TLS_CERT") ?? "/tmp/mailpipe-tls/cert.pem";

    public static string PostfixMaildir => Environment.GetEnvironmentVariable("MAILPIPE_MAILDIR") ?? "/tmp/mailpipe-maildir";

    /// <summary>A recipient no other test (or helper) uses, so that its Maildir holds only this test's mail.</summary>
    public static string UniqueRecipient(string prefix = "ext") => $"{prefix}-{Guid.NewGuid():N}@example.test";

    /// <summary>Fails loudly (never skips) when a server the test needs is not listening.</summary>
    public static void RequireListening(int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(Host, port);
        }
        catch (SocketException ex)
        {
            throw new InvalidOperationException($"No SMTP server listens on {Host}:{port}. Start the test servers first: sudo bash build/servers/up-all.sh (build/test.sh does it).", ex);
        }
    }

    /// <summary>A loopback port nobody listens on (bound, then released).</summary>
    public static int UnusedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Waits (polling, up to <paramref name="timeout"/>) for at least <paramref name="count"/> files in the Maildir of <paramref name="recipient"/>; returns their paths.</summary>
    public static async Task<string[]> WaitForMaildirAsync(string recipient, int count = 1, TimeSpan? timeout = null)
    {
        var directory = Path.Combine(PostfixMaildir, recipient, "new");
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var files = Directory.Exists(directory) ? Directory.GetFiles(directory) : [];
            if (files.Length >= count)
            {
                return files;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} message(s) in {directory}; found {files.Length}.");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The files in the Maildir of <paramref name="recipient"/> now (none when it has none).</summary>
    public static string[] MaildirFiles(string recipient)
    {
        var directory = Path.Combine(PostfixMaildir, recipient, "new");
        return Directory.Exists(directory) ? Directory.GetFiles(directory) : [];
    }

    private static int Port(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : fallback;
}
