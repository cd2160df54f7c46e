namespace MailPipe;

/// <summary>
/// The pool's queue of waiting messages, in arrival order: a doubly linked list threaded through the requests
/// themselves (no node per message), so that a message whose caller cancelled leaves it at once, in O(1), rather than
/// staying (its message and content with it) until a batch or the acquire timeout's tick reaches it. A request is in
/// one queue at most. Under the pool's lock, as every other state change.
/// </summary>
internal sealed class RequestQueue
{
    private SendRequest? _head;
    private SendRequest? _tail;

    /// <summary>How many requests it holds (waiting ones; a dropped one is removed when it is dropped).</summary>
    public int Count { get; private set; }

    /// <summary>The oldest request, if any.</summary>
    public SendRequest? Head => _head;

    /// <summary>Appends <paramref name="request"/>, which is in no queue.</summary>
    public void Enqueue(SendRequest request)
    {
        System.Diagnostics.Debug.Assert(request.Queue is null, "A request is in one queue at most.");
        request.Queue = this;
        request.Previous = _tail;
        request.Next = null;
        if (_tail is null)
        {
            _head = request;
        }
        else
        {
            _tail.Next = request;
        }

        _tail = request;
        Count++;
    }

    /// <summary>Takes the oldest request out.</summary>
    public bool TryDequeue([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SendRequest? request)
    {
        request = _head;
        if (request is null)
        {
            return false;
        }

        Remove(request);
        return true;
    }

    /// <summary>Takes <paramref name="request"/> out wherever it is; false when it is not in this queue.</summary>
    public bool Remove(SendRequest request)
    {
        if (request.Queue != this)
        {
            return false;
        }

        if (request.Previous is { } previous)
        {
            previous.Next = request.Next;
        }
        else
        {
            _head = request.Next;
        }

        if (request.Next is { } next)
        {
            next.Previous = request.Previous;
        }
        else
        {
            _tail = request.Previous;
        }

        request.Queue = null;
        request.Previous = null;
        request.Next = null;
        Count--;
        return true;
    }
}
