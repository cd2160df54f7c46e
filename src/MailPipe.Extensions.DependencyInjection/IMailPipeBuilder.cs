namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// A sender registered by <c>services.AddMailPipe(...)</c>
/// or <c>AddKeyedMailPipe</c>, for further configuration: <see cref="MailPipeBuilderExtensions.ConfigureSender"/>,
/// <see cref="MailPipeBuilderExtensions.AddSenderDecorator"/>, <see cref="MailPipeBuilderExtensions.AddHealthCheck"/>,
/// <see cref="MailPipeBuilderExtensions.AddHealthContributor"/>,
/// and the extensions of other packages (MailPipe.Resilience's <c>AddStandardResilience()</c>). Telemetry needs none:
/// the sender publishes on the <c>MailPipe</c> source and meter (MailPipe.OpenTelemetry subscribes a provider).
/// </summary>
/// <remarks>Used while services are registered, on one thread; not thread-safe.</remarks>
public interface IMailPipeBuilder
{
    /// <summary>The service collection the sender is registered in.</summary>
    IServiceCollection Services { get; }

    /// <summary>
    /// The name of this sender: the service key for <c>AddKeyedMailPipe</c>, <see cref="Options.Options.DefaultName"/>
    /// (the empty string) for <c>AddMailPipe</c>. It is also the name of its <see cref="MailPipe.MailPipeOptions"/>
    /// (<c>IOptionsMonitor&lt;MailPipeOptions&gt;.Get(Name)</c>).
    /// </summary>
    string Name { get; }
}
