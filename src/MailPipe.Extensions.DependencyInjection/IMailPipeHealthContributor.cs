using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>
/// What a package that stands between the application and a sender knows of the sender's health, such as the circuit
/// breaker of MailPipe.Resilience's <c>AddStandardResilience()</c>: while it stops every send, the server's answer to
/// a probe says nothing of whether mail goes out. The sender's MailPipe health check asks each contributor first (in
/// the order added) and reports the first answer instead of probing the server. Added with
/// <see cref="MailPipeBuilderExtensions.AddHealthContributor"/>; this package depends on no package that adds one.
/// </summary>
public interface IMailPipeHealthContributor
{
    /// <summary>
    /// The sender's health as this contributor sees it now. Called on every health check run, on any thread: it should
    /// answer at once from state it keeps (no I/O).
    /// </summary>
    /// <param name="failureStatus">The status the check's registration gives a failure (<see cref="HealthStatus.Unhealthy"/> unless set otherwise), for an answer that is a failure.</param>
    /// <returns>
    /// <see langword="null"/> when sends reach the sender as usual (the check then probes the server); else the result
    /// to report. Its description is made one line of at most 512 characters, and the check's own data (the sender's
    /// name, its pool's statistics) are added to its data.
    /// </returns>
    HealthCheckResult? CheckHealth(HealthStatus failureStatus);
}
