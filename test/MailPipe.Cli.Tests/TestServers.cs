using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using SmtpServer;
using SmtpServer.ComponentModel;
using SmtpServer.Mail;
using SmtpServer.Net;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace MailPipe.Cli.Tests;

/// <summary>A message as an SmtpServer-based test server received it.</summary>
internal sealed record ReceivedMessage(string From, IReadOnlyList<string> To, byte[] Data)
{
    /// <summary>The data with the final CRLF that SmtpServer strips along with the terminating dot.</summary>
    public byte[] DataWithFinalLineEnd => [.. Data, (byte)'\r', (byte)'\n'];
}

/// <summary>An in-process SMTP server (the SmtpServer package) on 127.0.0.1 with policies that can refuse.</summary>
internal sealed class TestSmtpServer : IAsyncDisposable
{
    private readonly SmtpServer.SmtpServer _server;
    private readonly CancellationTokenSource _stop;
    private readonly Task _run;

    private TestSmtpServer(SmtpServer.SmtpServer server, CancellationTokenSource stop, Task run, int port, ConcurrentQueue<ReceivedMessage> messages)
    {
        _server = server;
        _stop = stop;
        _run = run;
        Port = port;
        Messages = messages;
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    public ConcurrentQueue<ReceivedMessage> Messages { get; }

    public static async Task<TestSmtpServer> StartAsync(
        Func<string, bool>? acceptSender = null,
        Func<string, bool>? acceptRecipient = null,
        SmtpResponse? dataResponse = null,
        X509Certificate2? certificate = null,
        bool implicitTls = false)
    {
        var messages = new ConcurrentQueue<ReceivedMessage>();
        var options = new SmtpServerOptionsBuilder()
            .ServerName("test.example")
            .Endpoint(b =>
            {
                b.Endpoint(new IPEndPoint(IPAddress.Loopback, 0));
                if (certificate is not null)
                {
                    // With a certificate: STARTTLS is offered, or TLS from the first byte (implicit TLS).
                    b.Certificate(certificate).IsSecure(implicitTls);
                }
            })
            .Build();
        var started = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var listeners = new EndpointListenerFactory();
        listeners.EndpointStarted += (_, e) => started.TrySetResult(((IPEndPoint)e.LocalEndPoint).Port);
        var services = new ServiceProvider();
        services.Add(listeners);
        services.Add(new Filter(acceptSender ?? (_ => true), acceptRecipient ?? (_ => true)));
        services.Add(new Store(messages, dataResponse));
        var server = new SmtpServer.SmtpServer(options, services);
        var stop = new CancellationTokenSource();
        var run = server.StartAsync(stop.Token);
        var port = await started.Task.WaitAsync(TimeSpan.FromSeconds(60));
        return new TestSmtpServer(server, stop, run, port, messages);
    }

    public async ValueTask DisposeAsync()
    {
        _server.Shutdown();
        await Task.WhenAny(_server.ShutdownTask, Task.Delay(TimeSpan.FromSeconds(5)));
        _stop.Cancel();
        try
        {
            await _run;
        }
        catch (OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private sealed class Filter(Func<string, bool> acceptSender, Func<string, bool> acceptRecipient) : IMailboxFilter
    {
        public Task<bool> CanAcceptFromAsync(ISessionContext context, IMailbox from, int size, CancellationToken cancellationToken) =>
            Task.FromResult(acceptSender(from.AsAddress()));

        public Task<bool> CanDeliverToAsync(ISessionContext context, IMailbox to, IMailbox from, CancellationToken cancellationToken) =>
            Task.FromResult(acceptRecipient(to.AsAddress()));
    }

    private sealed class Store(ConcurrentQueue<ReceivedMessage> messages, SmtpResponse? response) : MessageStore
    {
        public override Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            if (response is not null)
            {
                return Task.FromResult(response);
            }

            messages.Enqueue(new ReceivedMessage(transaction.From.AsAddress(), [.. transaction.To.Select(t => t.AsAddress())], buffer.ToArray()));
            return Task.FromResult(SmtpResponse.Ok);
        }
    }
}

/// <summary>
/// A one-connection SMTP server on 127.0.0.1 driven by a script, for what a real server rarely does: no greeting,
/// no EHLO, a connection dropped after the data. A reply of <see langword="null"/> closes the connection.
/// </summary>
internal sealed class ScriptedSmtpServer : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public ScriptedSmtpServer(string? greeting, Func<string, string?> onCommand, Func<byte[], string?>? onData = null)
        : this(greeting, onCommand, onData is null ? null : data => Task.FromResult(onData(data)), asynchronous: true)
    {
    }

    private ScriptedSmtpServer(string? greeting, Func<string, string?> onCommand, Func<byte[], Task<string?>>? onData, bool asynchronous)
    {
        _ = asynchronous;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _run = Task.Run(() => ServeAsync(greeting, onCommand, onData ?? (_ => Task.FromResult<string?>("250 2.0.0 queued")), _stop.Token));
    }

    public int Port { get; }

    public string Address => $"127.0.0.1:{Port}";

    /// <summary>A server whose reply to the end of data may wait (for the client's output, say).</summary>
    public static ScriptedSmtpServer WithAsyncData(string greeting, Func<string, string?> onCommand, Func<byte[], Task<string?>> onData) =>
        new(greeting, onCommand, onData, asynchronous: true);

    public ConcurrentQueue<string> Commands { get; } = new();

    /// <summary>Whether a client connected.</summary>
    public bool Connected => Volatile.Read(ref _connected) != 0;

    private int _connected;

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        try
        {
            await _run;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or IOException or ObjectDisposedException or InvalidOperationException)
        {
        }

        _stop.Dispose();
    }

    private async Task ServeAsync(string? greeting, Func<string, string?> onCommand, Func<byte[], Task<string?>> onData, CancellationToken cancellationToken)
    {
        using var client = await _listener.AcceptTcpClientAsync(cancellationToken);
        Interlocked.Exchange(ref _connected, 1);
        await using var stream = client.GetStream();
        if (greeting is null)
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return;
        }

        await WriteAsync(stream, greeting, cancellationToken);

        // What was read and not yet taken: buffer[0..length). In the data, the search for its end resumes where the last
        // one stopped (less the 4 bytes a split "\r\n.\r\n" may have left), so a large message costs one pass, not one
        // pass per read (that made a 110 MB batch take up to a minute on a loaded machine).
        var buffer = new byte[64 * 1024];
        var length = 0;
        var searched = 0;
        var inData = false;
        while (true)
        {
            if (length == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);
            }

            var read = await stream.ReadAsync(buffer.AsMemory(length), cancellationToken);
            if (read == 0)
            {
                return;
            }

            length += read;
            while (true)
            {
                if (inData)
                {
                    var from = Math.Max(0, searched - 4);
                    var found = buffer.AsSpan(from, length - from).IndexOf("\r\n.\r\n"u8);
                    if (found < 0)
                    {
                        searched = length;
                        break;
                    }

                    var end = from + found;
                    var data = buffer[..(end + 2)];
                    Take(end + 5);
                    inData = false;
                    var reply = await onData(data);
                    if (reply is null)
                    {
                        return;
                    }

                    await WriteAsync(stream, reply, cancellationToken);
                }
                else
                {
                    var lineEnd = buffer.AsSpan(0, length).IndexOf("\r\n"u8);
                    if (lineEnd < 0)
                    {
                        break;
                    }

                    var line = Encoding.UTF8.GetString(buffer, 0, lineEnd);
                    Take(lineEnd + 2);
                    Commands.Enqueue(line);
                    var reply = onCommand(line);
                    if (reply is null)
                    {
                        return;
                    }

                    await WriteAsync(stream, reply, cancellationToken);
                    inData = line.Equals("DATA", StringComparison.OrdinalIgnoreCase) && reply.StartsWith("354", StringComparison.Ordinal);
                }
            }
        }

        void Take(int count)
        {
            Buffer.BlockCopy(buffer, count, buffer, 0, length - count);
            length -= count;
            searched = 0;
        }
    }

    private static Task WriteAsync(NetworkStream stream, string reply, CancellationToken cancellationToken) =>
        stream.WriteAsync(Encoding.UTF8.GetBytes(reply.EndsWith("\r\n", StringComparison.Ordinal) ? reply : reply + "\r\n"), cancellationToken).AsTask();

    /// <summary>A script that accepts everything, as a plain SMTP server would.</summary>
    public static string? AcceptAll(string command) => command.ToUpperInvariant() switch
    {
        var c when c.StartsWith("EHLO", StringComparison.Ordinal) => "250-scripted.test\r\n250 8BITMIME",
        var c when c.StartsWith("HELO", StringComparison.Ordinal) => "250 scripted.test",
        "DATA" => "354 go ahead",
        "QUIT" => "221 bye",
        _ => "250 ok",
    };
}

/// <summary>A self-signed server certificate for the in-process TLS servers, and its PEM file for --ca-file.</summary>
internal sealed class TestCertificate : IDisposable
{
    private readonly TempDirectory _directory = new();

    public TestCertificate(string dnsName, bool withLoopbackAddress = false)
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={dnsName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(dnsName);
        if (withLoopbackAddress)
        {
            names.AddIpAddress(IPAddress.Loopback);
        }

        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        Certificate = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
        PemFile = _directory.File("ca.pem", Certificate.ExportCertificatePem());
    }

    public X509Certificate2 Certificate { get; }

    /// <summary>The certificate as PEM, to trust with --ca-file.</summary>
    public string PemFile { get; }

    public void Dispose()
    {
        Certificate.Dispose();
        _directory.Dispose();
    }
}
