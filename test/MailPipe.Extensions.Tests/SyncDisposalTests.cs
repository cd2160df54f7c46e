using MailPipe.Extensions.Tests.Support;
using MailPipe.Resilience;
using Microsoft.Extensions.DependencyInjection;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// <c>using var provider = services.BuildServiceProvider();</c> (console applications, tests): the container disposes
/// its singletons with <c>Dispose</c>, which threw "'SmtpSender' type only implements IAsyncDisposable. Use
/// DisposeAsync to dispose the container." while MailPipe's senders were only IAsyncDisposable. Their Dispose starts
/// the disposal without waiting for the connections to close; a later DisposeAsync awaits it.
/// </summary>
public sealed class SyncDisposalTests
{
    [Fact]
    public async Task A_provider_disposed_synchronously_disposes_the_sender_it_made()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = TestServers.Host; o.Port = TestServers.PostfixPort; o.TlsMode = SmtpTlsMode.None; });
        var recipient = TestServers.UniqueRecipient("sync-dispose");
        var provider = services.BuildServiceProvider();
        var sender = provider.GetRequiredService<ISmtpSender>();
        var pool = provider.GetRequiredService<SmtpSender>();
        (await sender.SendAsync(Message(recipient))).IsAccepted.Should().BeTrue();

        provider.Invoking(p => p.Dispose()).Should().NotThrow("SmtpSender is IDisposable: its Dispose starts the disposal");

        await pool.Awaiting(s => s.SendAsync(Message(recipient))).Should().ThrowAsync<ObjectDisposedException>("disposed before Dispose returned");
        await pool.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var statistics = pool.GetStatistics();
        statistics.Discarded.Should().Be(statistics.Opened, "DisposeAsync after the container's Dispose completes when every connection is closed").And.BeGreaterThan(0);
        await TestServers.WaitForMaildirAsync(recipient);
    }

    [Fact]
    public async Task A_provider_with_resilience_and_keyed_senders_disposed_synchronously_disposes_them_all()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience();
        services.AddKeyedMailPipe("bulk", o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; }).AddStandardResilience();
        var provider = services.BuildServiceProvider();
        var resilient = provider.GetRequiredService<ISmtpSender>().Should().BeOfType<ResilientSmtpSender>().Subject;
        var keyed = provider.GetRequiredKeyedService<ISmtpSender>("bulk").Should().BeOfType<ResilientSmtpSender>().Subject;

        provider.Invoking(p => p.Dispose()).Should().NotThrow();

        foreach (var sender in new ISmtpSender[] { resilient, resilient.InnerSender, keyed, keyed.InnerSender })
        {
            await sender.Awaiting(s => s.SendAsync(Message("a@example.test"))).Should().ThrowAsync<ObjectDisposedException>();
        }

        // The disposals the container's Dispose started end (no connection was opened: nothing to wait for but them).
        await Task.WhenAll(resilient.DisposeAsync().AsTask(), keyed.DisposeAsync().AsTask()).WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static SmtpMessage Message(string recipient) =>
        SmtpMessage.FromBytes(new SmtpEnvelope("alice@example.test", recipient), "Subject: sync dispose\r\n\r\nbody\r\n"u8.ToArray());
}
