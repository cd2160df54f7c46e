using MailPipe;

namespace OpenTelemetry.Trace
{
    /// <summary>MailPipe's spans for an OpenTelemetry tracer provider.</summary>
    public static class MailPipeTracerProviderBuilderExtensions
    {
        /// <summary>
        /// Subscribes to the <c>MailPipe</c> activity source (<see cref="MailPipeDiagnostics.ActivitySourceName"/>): the
        /// spans <c>smtp connection</c>, <c>smtp connect</c>, <c>smtp tls</c>, <c>smtp auth</c> and <c>smtp transaction</c>.
        /// With the default <c>ParentBased</c> sampler a transaction under an unsampled parent is dropped too; see the
        /// package README for how to keep it.
        /// </summary>
        /// <param name="builder">The tracer provider builder.</param>
        /// <returns><paramref name="builder"/>, for chaining.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
        public static TracerProviderBuilder AddMailPipeInstrumentation(this TracerProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddSource(MailPipeDiagnostics.ActivitySourceName);
        }
    }
}

namespace OpenTelemetry.Metrics
{
    /// <summary>MailPipe's instruments for an OpenTelemetry meter provider.</summary>
    public static class MailPipeMeterProviderBuilderExtensions
    {
        /// <summary>
        /// Subscribes to the <c>MailPipe</c> meter (<see cref="MailPipeDiagnostics.MeterName"/>): transactions by outcome,
        /// recipients, bytes, transaction/connection/connect/TLS/AUTH durations, failures by <c>error.type</c>, and the
        /// pooled sender's connections. Meters made through an <c>IMeterFactory</c> (the DI package passes the
        /// container's) carry the same name and are picked up too.
        /// </summary>
        /// <param name="builder">The meter provider builder.</param>
        /// <returns><paramref name="builder"/>, for chaining.</returns>
        /// <exception cref="ArgumentNullException"><paramref name="builder"/> is null.</exception>
        public static MeterProviderBuilder AddMailPipeInstrumentation(this MeterProviderBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            return builder.AddMeter(MailPipeDiagnostics.MeterName);
        }
    }
}
