using System.Threading.Channels;

namespace MailPipe;

/// <summary>
/// The transactions of one batch call, in message order, and their results. When streaming, each result is published
/// as soon as its transaction is decided (<see cref="MailTransaction.IsDecided"/>) and every earlier one has been;
/// <see cref="Publish"/> may be called from the writer and from a concurrent reply reader.
/// </summary>
internal sealed class BatchResults
{
    private readonly List<MailTransaction> _transactions;
    private readonly List<SmtpSendResult> _published;
    private readonly Channel<SmtpSendResult>? _stream;
    private bool _completed;

    public BatchResults(int capacity, bool streaming)
    {
        _transactions = new List<MailTransaction>(capacity);
        _published = new List<SmtpSendResult>(capacity);
        if (streaming)
        {
            _stream = System.Threading.Channels.Channel.CreateUnbounded<SmtpSendResult>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        }
    }

    /// <summary>What the caller's message sequence threw, if the call ended so (a streaming caller who left early is not given it).</summary>
    public Exception? SequenceError { get; set; }

    /// <summary>Whether results are published as they become known.</summary>
    public bool IsStreaming => _stream is not null;

    /// <summary>Set when the caller left a streaming call early: no more messages are taken (nobody reads their results).</summary>
    public bool Abandoned
    {
        get => Volatile.Read(ref _abandoned);
        set => Volatile.Write(ref _abandoned, value);
    }

    private bool _abandoned;

    /// <summary>The published results, in order (streaming only).</summary>
    public ChannelReader<SmtpSendResult> Stream => _stream?.Reader ?? throw new InvalidOperationException("Not a streaming batch.");

    public void Add(MailTransaction tx)
    {
        lock (_transactions)
        {
            _transactions.Add(tx);
        }
    }

    /// <summary>Publishes, in order, every decided transaction not published yet (streaming only; nothing otherwise).</summary>
    public void Publish()
    {
        if (_stream is null)
        {
            return;
        }

        lock (_transactions)
        {
            while (!_completed && _published.Count < _transactions.Count && _transactions[_published.Count].IsDecided)
            {
                var result = _transactions[_published.Count].ToResult(null);
                _published.Add(result);
                _stream.Writer.TryWrite(result);
            }
        }
    }

    /// <summary>
    /// Replies stopped (a lost connection, a timeout, a 421): no result of the first <paramref name="done"/> transactions
    /// (the writer is done with them) can change any more, so each one not published yet is published now with
    /// <paramref name="failure"/>, as <see cref="Complete"/> would, for a producer that waits for them before it yields
    /// its next message. Safe from the concurrent reader.
    /// </summary>
    public void PublishStopped(Exception failure, int done)
    {
        if (_stream is null)
        {
            return;
        }

        lock (_transactions)
        {
            while (!_completed && _published.Count < Math.Min(done, _transactions.Count))
            {
                var result = _transactions[_published.Count].ToResult(failure);
                _published.Add(result);
                _stream.Writer.TryWrite(result);
            }
        }
    }

    /// <summary>
    /// Ends the call: every transaction not published yet gets its result with <paramref name="failure"/> (why the
    /// call stopped, if it did) and is published; the stream is completed.
    /// </summary>
    /// <returns>Every result, in message order (the list is not changed any more).</returns>
    public IReadOnlyList<SmtpSendResult> Complete(Exception? failure)
    {
        lock (_transactions)
        {
            if (!_completed)
            {
                _completed = true;
                try
                {
                    for (var i = _published.Count; i < _transactions.Count; i++)
                    {
                        var result = _transactions[i].ToResult(failure);
                        _published.Add(result);
                        _stream?.Writer.TryWrite(result);
                    }
                }
                finally
                {
                    // Always: a reader (the pool's batch loop) waiting for the rest would otherwise wait for ever.
                    _stream?.Writer.TryComplete();
                }
            }

            return _published;
        }
    }
}
