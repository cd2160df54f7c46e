using MailPipe;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// Makes the sender of <paramref name="name"/> when the host starts, so that a setting made in code with
/// <see cref="MailPipeBuilderExtensions.ConfigureSender"/> that the sender refuses (a <c>MaxBatchSize</c> of 0, a zero
/// <c>AcquireTimeout</c>) stops the start like a wrong configuration key does, instead of failing the first request that
/// needs the sender; then the decorated sender (what <see cref="ISmtpSender"/> resolves to), so that a decorator that
/// fails stops the start too. Both are the singletons the application uses; neither opens a connection.
/// </summary>
/// <param name="services">The container.</param>
/// <param name="name">The sender's name: empty for <c>AddMailPipe</c>, else the key.</param>
internal sealed class MailPipeStartupCheck(IServiceProvider services, string name) : IHostedService
{
    /// <inheritdoc/>
    /// <exception cref="OptionsValidationException">The sender refused a setting; the failure names it.</exception>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            _ = MailPipeServiceCollectionExtensions.GetSender(services, name);
        }
        catch (ArgumentException ex)
        {
            throw Refused(name, ex);
        }

        // Then what ISmtpSender resolves to: a decorator (AddSenderDecorator, AddStandardResilience) that fails (returns
        // null, needs a service nobody registered) stops the start too, instead of the first request that takes it.
        _ = name.Length == 0 ? services.GetRequiredService<ISmtpSender>() : services.GetRequiredKeyedService<ISmtpSender>(name);
        return Task.CompletedTask;
    }

    /// <summary>The failure of a setting made in code that the sender refused, named as the property it was set on.</summary>
    /// <param name="name">The sender's name: empty for <c>AddMailPipe</c>, else the key.</param>
    /// <param name="exception">What the sender's constructor threw.</param>
    /// <returns>The exception to throw, as a wrong configuration key's.</returns>
    internal static OptionsValidationException Refused(string name, ArgumentException exception)
    {
        var setting = exception.ParamName is { Length: > 0 } parameter ? $"SmtpSenderOptions.{parameter}" : nameof(SmtpSenderOptions);
        return new OptionsValidationException(name, typeof(SmtpSenderOptions), [$"{setting} (set in code with ConfigureSender) was refused: {exception.Message}"]);
    }

    /// <inheritdoc/>
    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
