using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace MailPipe;

/// <summary>The pool's workers: one per busy connection, feeding waiting messages into one pipelined batch and completing each caller with its own result.</summary>
public sealed partial class SmtpSender
{
    /// <summary>One connection's life while it is busy: open it if needed, check it if it was idle, send batches until no message waits.</summary>
    private async Task RunWorkerAsync(PooledConnection? connection, List<SendRequest>? batch)
    {
        await Task.Yield();
        try
        {
            while (true)
            {
                if (connection is null)
                {
                    var failuresBefore = Interlocked.Read(ref _openFailures);
                    var (opened, error) = await OpenAsync().ConfigureAwait(false);
                    List<Work> start = [];
                    List<SendRequest> failed = [];
                    lock (_lock)
                    {
                        _opening--;
                        if (opened is null)
                        {
                            _open--;
                            failed.AddRange(batch ?? []);

                            // No connection is open or being opened that could serve the waiting messages: tell them
                            // now rather than at their acquire timeout. While others work or are still being opened (a
                            // server at its per-client connection limit greets the ones over it with 421 at once, while
                            // those under it are still in their greeting, TLS or AUTH), the messages wait for them, and
                            // no new connect is tried for a second (doubling with each failure in a row, up to 30 s).
                            if (_busy == 0 && _opening == 0)
                            {
                                failed.AddRange(TakeAll());
                            }
                            else
                            {
                                BackOffOpening(failuresBefore);
                            }
                        }
                        else
                        {
                            OpenSucceeded(failuresBefore);
                            _all.Add(opened);
                            _busy++;
                            if (batch is null || batch.Count == 0)
                            {
                                batch = TakeBatch(BatchLimit(opened));
                            }

                            if (batch.Count == 0 && ReturnIdleUnlessDisposed(opened))
                            {
                                return;
                            }
                        }

                        Dispatch(start);
                    }

                    Start(start);
                    if (opened is null)
                    {
                        foreach (var request in failed)
                        {
                            request.TrySetResult(SmtpSendResult.NotSent(request.Message.Envelope, error!));
                        }

                        return;
                    }

                    if (batch!.Count == 0)
                    {
                        // Its open ended as the sender was being disposed (too late for the open's cancel): closed, never idle.
                        await CloseAsync(opened, SmtpSenderDiscardReason.Disposed, quit: true).ConfigureAwait(false);
                        return;
                    }

                    connection = opened;
                }
                else if (connection.LentFromIdle)
                {
                    connection.LentFromIdle = false;

                    // Not a byte of its batch is written yet: while a NOOP or a QUIT waits for its reply (up to its
                    // timeout from a server that stopped answering) or a new connection opens, the messages wait again
                    // (their callers' cancellation and acquire timeout apply; another connection may take them), not an attempt.
                    // Decided once: the messages are given back exactly when the NOOP below is sent (read twice, the
                    // time could pass the threshold in between and the NOOP hold the batch it was meant to free).
                    var noop = NeedsNoop(connection);
                    if (noop)
                    {
                        ReturnUnsent(connection, batch!, 0);
                        batch = null;
                    }

                    var reason = await CheckBeforeLendingAsync(connection, noop).ConfigureAwait(false);
                    if (reason is not null)
                    {
                        if (batch is not null)
                        {
                            ReturnUnsent(connection, batch, 0); // before the QUIT, whose reply may take its 5 s
                        }

                        await CloseAsync(connection, reason, quit: reason is SmtpSenderDiscardReason.Lifetime or SmtpSenderDiscardReason.NonMailLimit).ConfigureAwait(false);
                        lock (_lock)
                        {
                            _busy--;
                            _opening++;
                        }

                        (connection, batch) = (null, null);
                        continue;
                    }

                    if (batch is null && (batch = TakeNextOrRelease(connection)) is not { Count: > 0 })
                    {
                        await CloseIfReleasedAsync(connection, batch).ConfigureAwait(false);
                        return;
                    }
                }

                await SendBatchAsync(connection, batch!).ConfigureAwait(false);
                batch = null;

                string? closeReason = !connection.Session.IsConnected ? connection.BrokenReason ?? SmtpSenderDiscardReason.Broken
                    : _options.MaxMessagesPerConnection > 0 && connection.Messages >= _options.MaxMessagesPerConnection ? SmtpSenderDiscardReason.MaxMessages
                    : IsNearNonMailLimit(connection) ? SmtpSenderDiscardReason.NonMailLimit
                    : IsPastLifetime(connection) ? SmtpSenderDiscardReason.Lifetime
                    : Volatile.Read(ref _disposed) ? SmtpSenderDiscardReason.Disposed

                    // Closed by the server (its end of stream, or a 421 before it) since the last reply: a message
                    // taken next would be written into a closed connection and, with PIPELINING and CHUNKING, its end of
                    // data with it, then come back Unknown though the server never saw it. Closed here, the messages
                    // waiting go to a fresh connection, as after an idle check.
                    : connection.Session.ServerLeftWhileNothingDue ? SmtpSenderDiscardReason.Stale
                    : null;
                if (closeReason is not null)
                {
                    if (closeReason is SmtpSenderDiscardReason.Broken or SmtpSenderDiscardReason.ServiceClosing && !connection.CancelledByCaller)
                    {
                        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
                        Log.PoolConnectionLost(_log, Name, connection.Id, closeReason, connection.Messages, connection.BrokenException);
                    }

                    await CloseAsync(connection, closeReason, quit: connection.Session.IsConnected).ConfigureAwait(false);
                    connection = null;
                    List<Work> start = [];
                    bool reopen;
                    lock (_lock)
                    {
                        _busy--;

                        // Keep the slot when messages wait (retries among them): open a fresh connection for them.
                        reopen = _waiting > 0 && !_disposed;
                        if (reopen)
                        {
                            _opening++;
                        }
                        else
                        {
                            _open--;
                            Dispatch(start);
                        }
                    }

                    Start(start);
                    if (!reopen)
                    {
                        return;
                    }

                    continue;
                }

                if ((batch = TakeNextOrRelease(connection)) is not { Count: > 0 })
                {
                    await CloseIfReleasedAsync(connection, batch).ConfigureAwait(false);
                    return;
                }
            }
        }
        finally
        {
            lock (_lock)
            {
                if (--_workers == 0 && _disposed)
                {
                    _workersDone.TrySetResult();
                }
            }
        }
    }

    /// <summary>
    /// Sends a batch on a connection: the messages taken, then every message that comes to wait while the batch runs
    /// and the connection has room (fewer than <see cref="SmtpSenderOptions.MaxBatchSize"/> in flight), all as one
    /// pipelined batch (<see cref="AsyncSmtpSession.SendBatchStreamingAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/>).
    /// Each caller is completed as soon as its own result is known. The batch ends when nothing is in flight and nothing waits.
    /// </summary>
    private async Task SendBatchAsync(PooledConnection connection, List<SendRequest> batch)
    {
        using var scope = Log.BeginConnectionScope(_log, connection.Id, Server, Name);
        var session = connection.Session;
        Interlocked.Increment(ref _batches);
        var taken = 0;
        var handedBefore = connection.Messages;
        using var batchCancellation = CancellationTokenSource.CreateLinkedTokenSource(_disposeCts.Token);
        lock (_lock)
        {
            connection.BatchCancellation = batchCancellation;
            connection.BatchMessages = 0;
        }

        try
        {
            await foreach (var result in session.SendBatchStreamingAsync(FeedAsync(connection, batch), batchCancellation.Token).ConfigureAwait(false))
            {
                SendRequest request;
                lock (_lock)
                {
                    request = connection.InFlight.Dequeue();

                    // Woken at the first result of a group of replies, the feeder's continuation is queued before
                    // those of the callers completed below, and runs after they have sent their next messages: it
                    // takes them together into one flush (woken by each new message instead, it flushes one by one).
                    connection.Wake();
                }

                taken++;
                Complete(connection, request, result);
            }
        }
        catch (OperationCanceledException ex) when (_disposeCts.IsCancellationRequested)
        {
            // Disposal cancelled the batch after DisposeTimeout; the results decided before were yielded above.
            FailInFlight(connection, request => SmtpSendResult.Unknown(request.Message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "The sender was disposed while the message was being sent; it may have been delivered.", ex)));
        }
        catch (OperationCanceledException ex)
        {
            // The only caller in flight cancelled (OnCancelled), or a content source's own cancellation: the session yielded
            // the results it could decide; any other is treated as possibly delivered (SmtpOutcomeUnknownException).
            List<SendRequest> rest;
            lock (_lock)
            {
                rest = [.. connection.InFlight];
                connection.InFlight.Clear();
                connection.Feeding = false;
            }

            if (!session.IsConnected)
            {
                connection.BrokenReason ??= SmtpSenderDiscardReason.TransactionAborted; // closed by the session for that cancellation
            }

            foreach (var request in rest)
            {
                Complete(connection, request, SmtpSendResult.Unknown(request.Message.Envelope, new SmtpException(SmtpErrorCode.ConnectionClosed, "The message was cancelled while it was being sent; it may have been delivered.", ex)));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Checked before queueing; reaching here is a bug or an exhausted resource (OutOfMemoryException): never
            // leave a caller waiting, nor the connection's slot taken (the worker goes on and closes the connection).
            await session.DisconnectAsync().ConfigureAwait(false);
            FailInFlight(connection, request => throw new InvalidOperationException("The pooled connection failed unexpectedly.", ex));
        }
        finally
        {
            lock (_lock)
            {
                connection.BatchCancellation = null;
                connection.Awake(); // no wake-up of this batch's feeder is pending any more
            }

            _metrics.Batch(taken);
            ReturnUnsent(connection, batch, connection.Messages - handedBefore); // Attempt counts what the session asked for
        }
    }
}
