using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace MailPipe.Tests.Authentication;

/// <summary>
/// A one-connection scripted SMTP server on 127.0.0.1 for the TLS and AUTH tests (real TCP, so that STARTTLS runs a
/// real handshake). The script gets an <see cref="AuthScriptConnection"/>; its exceptions surface from <see cref="Completion"/>.
/// </summary>
public sealed class AuthScriptServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly Task _run;

    public AuthScriptServer(Func<AuthScriptConnection, Task> script)
    {
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _run = RunAsync(script);
    }

    public int Port { get; }

    public string Host => "127.0.0.1";

    /// <summary>Every line the client sent, without CRLF, in order.</summary>
    public List<string> Received { get; } = [];

    /// <summary>Completes when the script ends; throws what the script threw (assertions included). Times out after 30 s.</summary>
    public Task Completion => _run.WaitAsync(TimeSpan.FromSeconds(30));

    private async Task RunAsync(Func<AuthScriptConnection, Task> script)
    {
        using var client = await _listener.AcceptTcpClientAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await using var connection = new AuthScriptConnection(client.GetStream(), Received);
        await script(connection);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Stop();
        try
        {
            await _run.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch
        {
            // The test already observed Completion, or did not care.
        }
    }
}

/// <summary>The server side of one connection: line I/O (byte by byte, so nothing past a line is ever buffered), TLS upgrade.</summary>
public sealed class AuthScriptConnection(Stream stream, List<string> received) : IAsyncDisposable
{
    private Stream _stream = stream;

    public static readonly string[] DefaultExtensions = ["PIPELINING", "8BITMIME"];

    public async Task SendAsync(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    public Task ReplyAsync(string line) => SendAsync(line + "\r\n");

    /// <summary>Reads one line without CRLF; <see langword="null"/> at end of stream.</summary>
    public async Task<string?> ReadLineAsync()
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(one).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (IOException)
            {
                n = 0;
            }

            if (n == 0)
            {
                return line.Count == 0 ? null : Record(line);
            }

            if (one[0] == (byte)'\n')
            {
                if (line.Count > 0 && line[^1] == (byte)'\r')
                {
                    line.RemoveAt(line.Count - 1);
                }

                return Record(line);
            }

            line.Add(one[0]);
        }
    }

    /// <summary>Reads a line and checks that it starts with <paramref name="prefix"/> (case-insensitive).</summary>
    public async Task<string> ExpectAsync(string prefix)
    {
        var line = await ReadLineAsync();
        line.Should().NotBeNull($"the client should have sent '{prefix}…'");
        line!.Should().StartWithEquivalentOf(prefix);
        return line;
    }

    /// <summary>The decoded argument of a base64 line.</summary>
    public static byte[] FromBase64(string line) => Convert.FromBase64String(line.Trim());

    /// <summary>Greeting, then EHLO answered with <paramref name="extensions"/>.</summary>
    public async Task GreetAndEhloAsync(params string[] extensions)
    {
        await ReplyAsync("220 script.test ESMTP ready");
        await ExpectAsync("EHLO ");
        await EhloReplyAsync(extensions);
    }

    public async Task EhloReplyAsync(params string[] extensions)
    {
        var lines = new List<string> { "script.test" };
        lines.AddRange(extensions);
        for (var i = 0; i < lines.Count; i++)
        {
            await ReplyAsync((i == lines.Count - 1 ? "250 " : "250-") + lines[i]);
        }
    }

    /// <summary>Runs the server side of a TLS handshake with <paramref name="certificate"/>.</summary>
    public async Task UpgradeAsync(X509Certificate2 certificate)
    {
        var tls = new SslStream(_stream, leaveInnerStreamOpen: false);
        await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = certificate }).WaitAsync(TimeSpan.FromSeconds(20));
        _stream = tls;
    }

    /// <summary>Sends a TLS close_notify alert (the TCP connection stays open): after <see cref="UpgradeAsync"/> only.</summary>
    public Task SendCloseNotifyAsync() => ((SslStream)_stream).ShutdownAsync().WaitAsync(TimeSpan.FromSeconds(20));

    /// <summary>Like <see cref="UpgradeAsync"/>, but a failed handshake (the client refused the certificate) is expected and swallowed.</summary>
    public async Task<bool> TryUpgradeAsync(X509Certificate2 certificate)
    {
        try
        {
            await UpgradeAsync(certificate);
            return true;
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return false;
        }
    }

    /// <summary>Reads whatever the client has sent (at least one byte, at most 4 KiB); 0 at end of stream.</summary>
    public async Task<int> ReadSomeAsync()
    {
        var buffer = new byte[4096];
        return await _stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
    }

    /// <summary>Reads until the client closes; returns the number of bytes it sent meanwhile.</summary>
    public async Task<int> DrainAsync()
    {
        var buffer = new byte[4096];
        var total = 0;
        while (true)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(20));
            }
            catch (IOException)
            {
                return total;
            }

            if (n == 0)
            {
                return total;
            }

            total += n;
        }
    }

    public async ValueTask DisposeAsync() => await _stream.DisposeAsync();

    private string Record(List<byte> bytes)
    {
        var line = Encoding.UTF8.GetString(bytes.ToArray());
        lock (received)
        {
            received.Add(line);
        }

        return line;
    }
}
