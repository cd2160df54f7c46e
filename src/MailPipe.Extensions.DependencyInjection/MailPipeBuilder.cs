namespace Microsoft.Extensions.DependencyInjection;

internal sealed class MailPipeBuilder(IServiceCollection services, string name) : IMailPipeBuilder
{
    public IServiceCollection Services { get; } = services;

    public string Name { get; } = name;

    /// <summary>The service key of the sender: null for the unkeyed one.</summary>
    public string? ServiceKey => Name.Length == 0 ? null : Name;
}

/// <summary>What the builder's extensions add to one sender (named options, the sender's name).</summary>
internal sealed class MailPipeSenderSetup
{
    public List<Action<IServiceProvider, MailPipe.SmtpSenderOptions>> SenderActions { get; } = [];

    public List<Func<IServiceProvider, MailPipe.ISmtpSender, MailPipe.ISmtpSender>> Decorators { get; } = [];

    public List<Func<IServiceProvider, IMailPipeHealthContributor>> HealthContributors { get; } = [];
}
