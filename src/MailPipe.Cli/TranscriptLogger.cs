using Microsoft.Extensions.Logging;

namespace MailPipe.Cli;

/// <summary>
/// The <c>--trace</c> output: MailPipe's log lines written to a text writer (standard error), the protocol transcript
/// (<c>C:</c>/<c>S:</c> lines of category <c>MailPipe.Protocol</c>) as is and other events after <c>* </c>.
/// </summary>
internal sealed class TranscriptLoggerProvider : ILoggerProvider
{
    private readonly TextWriter _writer;
    private readonly Lock _lock = new();

    /// <summary>Creates the provider.</summary>
    /// <param name="writer">Where the lines go.</param>
    public TranscriptLoggerProvider(TextWriter writer) => _writer = writer;

    /// <summary>A logger factory that sends every MailPipe event, Trace and above, to <paramref name="writer"/>.</summary>
    /// <param name="writer">Where the lines go.</param>
    /// <returns>The factory; the caller disposes it.</returns>
    public static ILoggerFactory CreateFactory(TextWriter writer) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(LogLevel.Trace)
        .AddProvider(new TranscriptLoggerProvider(writer)));

    /// <inheritdoc/>
    public ILogger CreateLogger(string categoryName) => new TranscriptLogger(this, categoryName);

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_lock)
        {
            _writer.Flush();
        }
    }

    private void Write(string line)
    {
        lock (_lock)
        {
            _writer.WriteLine(TerminalText.Sanitize(line));
            _writer.Flush();
        }
    }

    private sealed class TranscriptLogger(TranscriptLoggerProvider provider, string category) : ILogger
    {
        private readonly bool _protocol = category == "MailPipe.Protocol";
        private readonly bool _mailPipe = category.StartsWith("MailPipe", StringComparison.Ordinal);

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => _mailPipe && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var message = formatter(state, exception);
            provider.Write(_protocol ? message : "* " + message);
        }
    }
}
