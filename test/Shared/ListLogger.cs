using Microsoft.Extensions.Logging;

namespace MailPipe.Tests.Support;

/// <summary>One captured log call.</summary>
internal sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, IReadOnlyList<KeyValuePair<string, object?>> State, Exception? Exception);

/// <summary>A logger factory and provider that keeps every entry at every level in memory, for assertions. Linked into MailPipe.Tests and MailPipe.IntegrationTests.</summary>
internal sealed class ListLoggerProvider : ILoggerProvider, ILoggerFactory
{
    private readonly Lock _lock = new();
    private readonly List<LogEntry> _entries = [];

    /// <summary>Every entry so far, in order.</summary>
    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_lock)
            {
                return [.. _entries];
            }
        }
    }

    /// <summary>The formatted messages of every entry so far.</summary>
    public IReadOnlyList<string> Messages => [.. Entries.Select(e => e.Message)];

    public ILogger CreateLogger(string categoryName) => new ListLogger(this, categoryName);

    public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        lock (_lock)
        {
            _entries.Add(entry);
        }
    }

    private sealed class ListLogger(ListLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            IReadOnlyList<KeyValuePair<string, object?>> values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? [.. pairs] : [];
            owner.Add(new LogEntry(category, logLevel, eventId, formatter(state, exception), values, exception));
        }
    }
}
