using System.Text;
using MailPipe.IntegrationTests.Support;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MailPipe.Resilience.Tests.Peer;

/// <summary>The real servers the peer suite sends to, each with its own store.</summary>
public enum PeerServer
{
    Postfix,
    Exim,
    Aiosmtpd,
}

/// <summary>A message with a Message-Id of its own, so that its copies can be counted in a server's store.</summary>
internal sealed record PeerMail(string MessageId, byte[] Content, SmtpMessage Message)
{
    public SmtpEnvelope Envelope => Message.Envelope;
}

/// <summary>
/// Helpers of the peer acceptance suite of MailPipe.Resilience and of the shared sender's failure model (black box: the
/// expectations come from the READMEs and the XML docs). Every count of deliveries is by Message-Id in the real
/// server's store, once a marker sent afterwards on a connection of its own has arrived.
/// </summary>
internal static class PeerSupport
{
    public const string From = "peer18b@example.test";
    public const string TempFail = "tempfail@example.test";
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(90);

    public static int Port(PeerServer server) => server switch
    {
        PeerServer.Postfix => TestServers.PostfixPort,
        PeerServer.Exim => TestServers.EximPort,
        _ => TestServers.AiosmtpdPort,
    };

    /// <summary>
    /// DATA, not BDAT: the content waits for the 354, so that a connection cut before MAIL reaches the server leaves the
    /// end of data unwritten (with CHUNKING and PIPELINING the whole transaction goes out in one write, and a cut after
    /// it is rightly Unknown), and so that the recording proxy sees the final dot.
    /// </summary>
    public static SmtpSessionOptions DataOnly => new() { UseChunking = false };

    /// <summary>Waits until the pool's batches have ended and one connection is idle (the pool's own statistics; no event tells).</summary>
    public static async Task WaitUntilIdleAsync(SmtpSender sender)
    {
        var deadline = DateTime.UtcNow + Guard;
        while (sender.GetStatistics() is not { InUse: 0, Idle: 1 })
        {
            DateTime.UtcNow.Should().BeBefore(deadline, "the pool's batch should end");
            await Task.Delay(10);
        }
    }

    public static PeerMail Mail(params string[] recipients) => MailFrom(From, recipients);

    public static PeerMail MailFrom(string from, params string[] recipients)
    {
        var id = $"<{Guid.NewGuid():N}@peer18b.test>";
        var body = new StringBuilder($"From: <{from}>\r\nTo: <peer@example.test>\r\nSubject: peer18b\r\nMessage-Id: {id}\r\n\r\n");
        for (var i = 0; i < 20; i++)
        {
            body.Append(FormattableString.Invariant($"line {i:D3} of a message of the MailPipe.Resilience peer suite\r\n"));
        }

        var content = Encoding.ASCII.GetBytes(body.ToString());
        return new PeerMail(id, content, SmtpMessage.FromBytes(new SmtpEnvelope(from, recipients), content));
    }

    public static SmtpSenderOptions Options(int port, Action<SmtpSenderOptions>? configure = null)
    {
        var options = new SmtpSenderOptions { Host = TestServers.Host, Port = port, TlsMode = SmtpTlsMode.None, EhloName = "peer18b.example.test" };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>Retries at once (no back-off), <paramref name="retries"/> of them.</summary>
    public static Action<SmtpStandardResilienceOptions> Fast(int retries, Action<SmtpStandardResilienceOptions>? more = null) => o =>
    {
        o.Retry.MaxRetryAttempts = retries;
        o.Retry.Delay = TimeSpan.Zero;
        o.Retry.ThrottledDelay = TimeSpan.Zero;
        o.Retry.UseJitter = false;
        more?.Invoke(o);
    };

    /// <summary>Completes (and runs <paramref name="action"/> first) when Polly is about to wait before retry number <paramref name="retry"/> (1-based).</summary>
    public static TaskCompletionSource OnRetry(SmtpStandardResilienceOptions options, int retry = 1, Func<Task>? action = null)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        options.Retry.OnRetry = async args =>
        {
            if (args.AttemptNumber + 1 == retry)
            {
                if (action is not null)
                {
                    await action();
                }

                reached.TrySetResult();
            }
        };
        return reached;
    }

    public static void RequireServers()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
    }

    /// <summary>
    /// How many copies of <paramref name="mail"/> <paramref name="recipient"/> got at <paramref name="server"/>: counted once
    /// a marker sent afterwards on a connection of its own and at least <paramref name="expected"/> copies have arrived (a
    /// server delivers asynchronously, not always in the order it queued), or after a minute.
    /// </summary>
    public static async Task<int> CopiesAsync(PeerServer server, string recipient, PeerMail mail, int expected = 1)
    {
        var marker = $"<{Guid.NewGuid():N}@marker.peer18b.test>";
        await using (var sender = new SmtpSender(Options(Port(server))))
        {
            var result = await sender.SendAsync(
                new SmtpEnvelope("marker@example.test", recipient),
                Encoding.ASCII.GetBytes($"Subject: marker\r\nMessage-Id: {marker}\r\n\r\nmarker\r\n"));
            result.IsAccepted.Should().BeTrue(result.ToString());
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var texts = Files(server, recipient).Select(ReadOrEmpty)
                .Where(t => server != PeerServer.Exim || t.Contains("Envelope-to: " + recipient + "\r\n", StringComparison.Ordinal)).ToList();
            var copies = texts.Count(t => t.Contains("Message-Id: " + mail.MessageId, StringComparison.Ordinal));
            if ((copies >= expected && texts.Any(t => t.Contains(marker, StringComparison.Ordinal))) || DateTime.UtcNow > deadline)
            {
                return copies;
            }

            await Task.Delay(50);
        }
    }

    /// <summary>The stored copy of <paramref name="mail"/> for <paramref name="recipient"/> at Postfix, trace headers stripped.</summary>
    public static async Task<byte[]> StoredAsync(string recipient, PeerMail mail)
    {
        var files = await Maildir.WaitForPostfixAsync(recipient);
        var copy = files.Single(f => Encoding.ASCII.GetString(f).Contains(mail.MessageId, StringComparison.Ordinal));
        return Maildir.StripTraceHeaders(copy);
    }

    private static string ReadOrEmpty(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    private static IEnumerable<string> Files(PeerServer server, string recipient)
    {
        var (directory, pattern, filter) = server switch
        {
            PeerServer.Postfix => (Path.Combine(TestServers.PostfixMaildir, recipient, "new"), "*", (Func<string, bool>)(_ => true)),
            PeerServer.Exim => (Path.Combine(TestServers.EximMaildir, "new"), "*", _ => true),
            _ => (TestServers.AiosmtpdMessages, "*.eml", p => File.Exists(Path.ChangeExtension(p, ".json"))),
        };
        return Directory.Exists(directory) ? Directory.GetFiles(directory, pattern).Where(filter) : [];
    }

    /// <summary>A host whose configuration is <paramref name="json"/> (as appsettings.json gives it), not started.</summary>
    public static HostApplicationBuilder Host(string json)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Configuration.Sources.Clear();
        builder.Configuration.AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json)));
        return builder;
    }

    /// <summary>A host with the default sender to <paramref name="port"/> and <c>AddStandardResilience(SmtpResilience)</c> from <paramref name="resilience"/>.</summary>
    public static IHost ResilientHost(int port, string resilience, Action<IServiceCollection>? services = null)
    {
        var builder = Host($$"""
            { "Smtp": { "Host": "127.0.0.1", "Port": {{port}}, "TlsMode": "None", "EhloName": "peer18b.example.test" },
              "SmtpResilience": {{resilience}} }
            """);
        builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
            .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"));
        services?.Invoke(builder.Services);
        return builder.Build();
    }
}
