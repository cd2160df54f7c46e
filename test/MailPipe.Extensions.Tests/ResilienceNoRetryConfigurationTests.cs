using MailPipe.Resilience;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace MailPipe.Extensions.Tests;

/// <summary>
/// <c>SmtpResilience:Retry:MaxRetryAttempts = 0</c> stopped the start ("must be between 1 and 2147483647; it is 0"):
/// "no retries" could not be said from configuration. It now means a pipeline without a retry strategy, the total
/// timeout, circuit breaker and attempt timeout kept, and the other retry keys still checked.
/// </summary>
public sealed class ResilienceNoRetryConfigurationTests
{
    [Fact]
    public async Task Zero_retries_from_configuration_starts_and_sends_each_message_once()
    {
        var inner = new RefusingSender();
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddSenderDecorator((_, _) => inner)
            .AddStandardResilience(Section(new() { ["SmtpResilience:Retry:MaxRetryAttempts"] = "0", ["SmtpResilience:Retry:Delay"] = "00:00:00" }));
        await using var provider = services.BuildServiceProvider();

        provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName).Retry.MaxRetryAttempts.Should().Be(0);
        var sender = provider.GetRequiredService<ISmtpSender>();
        var result = await sender.SendAsync(SmtpMessage.FromBytes(new SmtpEnvelope("a@example.test", "b@example.test"), "Subject: x\r\n\r\ny\r\n"u8.ToArray()));

        sender.Should().BeOfType<ResilientSmtpSender>();
        result.Attempts.Should().Be(1);
        inner.Calls.Should().Be(1, "a 451 is transient, but there are no retries");
    }

    [Fact]
    public async Task With_zero_retries_the_other_retry_keys_are_still_checked()
    {
        var services = new ServiceCollection();
        services.AddMailPipe(o => { o.Host = "127.0.0.1"; o.TlsMode = SmtpTlsMode.None; })
            .AddStandardResilience(Section(new() { ["SmtpResilience:Retry:MaxRetryAttempts"] = "0", ["SmtpResilience:Retry:Delay"] = "-00:00:01" }));
        await using var provider = services.BuildServiceProvider();

        var read = () => provider.GetRequiredService<IOptionsMonitor<SmtpStandardResilienceOptions>>().Get(Options.DefaultName);

        read.Should().Throw<OptionsValidationException>().Which.Failures.Should().Equal("SmtpResilience:Retry:Delay must be between 00:00:00 and 1.00:00:00; it is -00:00:01.");
    }

    private static IConfigurationSection Section(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build().GetSection("SmtpResilience");

    private sealed class RefusingSender : ISmtpSender
    {
        public int Calls;

        public Task<SmtpSendResult> SendAsync(SmtpMessage message, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(SmtpSendResult.Create(message.Envelope, SmtpSendOutcome.Refused, new SmtpReply(250, "ok"), [new SmtpRecipientResult(message.Envelope.Recipients[0], new SmtpReply(451, "4.3.0 later"))]));
        }

        public Task<IReadOnlyList<SmtpSendResult>> SendBatchAsync(IEnumerable<SmtpMessage> messages, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
