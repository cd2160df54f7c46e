namespace MailPipe;

/// <summary>The pool's feeder: the messages of one connection's batch, taken from the queue while there is room.</summary>
public sealed partial class SmtpSender
{
    /// <summary>The batch's messages: the ones taken, then more from the queue while there is room, waiting only while results are due.</summary>
    private async IAsyncEnumerable<SmtpMessage> FeedAsync(PooledConnection connection, List<SendRequest> first)
    {
        foreach (var request in first)
        {
            if (!TryHandOver(connection, request))
            {
                yield break;
            }

            yield return Attempt(connection, request);
        }

        while (true)
        {
            SendRequest? next = null;
            ValueTask wake = default;
            lock (_lock)
            {
                connection.Awake();
                // Nothing in flight and the server has left (see ServerLeftWhileNothingDue): the batch ends, the worker
                // closes the connection and the message waits for a fresh one, never written into this one.
                if (_waiting > 0 && HasRoom(connection) && (connection.InFlight.Count > 0 || !connection.Session.ServerLeftWhileNothingDue) && TryTakeNext(out next))
                {
                    connection.InFlight.Enqueue(next);
                }

                if (next is null)
                {
                    if (connection.InFlight.Count == 0 || !connection.Session.IsConnected || _disposed)
                    {
                        connection.Feeding = false;
                        yield break;
                    }

                    // Results are due: wait for one of them, or for a new message (the session reads replies meanwhile).
                    connection.Feeding = true;
                    wake = connection.ArmWake();
                    ArmHousekeeping();
                }
            }

            if (next is not null)
            {
                yield return Attempt(connection, next);
            }
            else
            {
                // A lost connection is noticed by the housekeeping tick, which wakes this wait.
                await wake.ConfigureAwait(false);
            }
        }
    }

    private SmtpMessage Attempt(PooledConnection connection, SendRequest request)
    {
        request.Attempts++;
        connection.Messages++;
        connection.BatchMessages++;
        Interlocked.Increment(ref _messages);
        return MailPipeTelemetry.WithParent(request.Token.CanBeCanceled ? request.Message.WithCancellation(request.Token) : request.Message, request.TelemetryParent);
    }
}
