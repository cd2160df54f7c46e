namespace MailPipe.Transmission;

/// <summary>
/// THE queue of replies the connection expects, in wire order: an entry is added in the call that writes its command
/// (before anything is flushed, so no reply can arrive before its entry), and taken when its reply is matched. What
/// the layer above needs to file the reply (a transaction, a recipient's index) travels on the entry itself, so no
/// other queue of expected replies exists. Every member is thread-safe (the writer adds while a concurrent reader takes).
/// </summary>
/// <typeparam name="TPayload">What the layer above files a reply with.</typeparam>
internal sealed class ExpectedReplyQueue<TPayload>
{
    private readonly Lock _lock = new();
    /// <summary>A ring whose length is a power of two (indices are masked).</summary>
    private Entry[] _items = new Entry[16];
    private int _head;
    private int _count;
    private long _taken;

    /// <summary>How many entries have been taken since the queue was made: a reader can tell whether its read took one.</summary>
    /// <remarks>Read without the lock (one atomic read; it only grows, under the lock): the reader compares two of its own readings.</remarks>
    public long TakenCount => Volatile.Read(ref _taken);

    /// <summary>Replies expected and not matched yet.</summary>
    /// <remarks>Read without the lock (one atomic read): exact on the writer's flow while no concurrent reader runs.</remarks>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Adds the entry of a command just written.</summary>
    /// <param name="name">The command's name (for the reply check and the messages).</param>
    public void Add(string name)
    {
        lock (_lock)
        {
            if (_count == _items.Length)
            {
                var grown = new Entry[_items.Length * 2];
                for (var i = 0; i < _count; i++)
                {
                    grown[i] = _items[(_head + i) & (_items.Length - 1)];
                }

                _items = grown;
                _head = 0;
            }

            _items[(_head + _count) & (_items.Length - 1)] = new Entry(name, default!);
            Volatile.Write(ref _count, _count + 1);
        }
    }

    /// <summary>Gives the entry added last what its reply is to be filed with.</summary>
    /// <param name="payload">The payload.</param>
    public void AttachToLast(TPayload payload)
    {
        lock (_lock)
        {
            var index = (_head + _count - 1) & (_items.Length - 1);
            _items[index] = _items[index] with { Payload = payload };
        }
    }

    /// <summary>The oldest entry, which the next reply answers.</summary>
    /// <param name="entry">The entry.</param>
    /// <returns>Whether there is one.</returns>
    public bool TryPeek(out Entry entry)
    {
        lock (_lock)
        {
            entry = _count > 0 ? _items[_head] : default;
            return _count > 0;
        }
    }

    /// <summary>Takes the oldest entry: its reply has arrived (or will never be read).</summary>
    /// <param name="entry">The entry.</param>
    /// <returns>Whether there was one.</returns>
    public bool TryTake(out Entry entry)
    {
        lock (_lock)
        {
            if (_count == 0)
            {
                entry = default;
                return false;
            }

            entry = _items[_head];
            _items[_head] = default;
            _head = (_head + 1) & (_items.Length - 1);
            Volatile.Write(ref _count, _count - 1);
            Volatile.Write(ref _taken, _taken + 1);
            return true;
        }
    }

    /// <summary>Forgets every entry (a new or closed connection).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            Array.Clear(_items);
            _head = 0;
            Volatile.Write(ref _count, 0);
        }
    }

    /// <summary>One expected reply.</summary>
    /// <param name="Name">The command's name.</param>
    /// <param name="Payload">What the reply is to be filed with (default until attached).</param>
    public readonly record struct Entry(string Name, TPayload Payload);
}
