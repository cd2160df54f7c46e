using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace MailPipe.EndToEnd.Clients;

/// <summary>What one run measured. <see cref="AllocatedBytes"/> is negative when not measured (another process).</summary>
internal sealed record Measurement(int Messages, TimeSpan Elapsed, long AllocatedBytes, TimeSpan Cpu);

/// <summary>One client under test. A run opens one connection, sends the messages over it, and closes it.</summary>
internal abstract class ClientRunner
{
    /// <summary>The name used by <c>--clients</c> and in the report.</summary>
    public abstract string Name { get; }

    /// <summary>One line for the report's legend.</summary>
    public abstract string Description { get; }

    /// <summary>Whether this client can run here; otherwise why not.</summary>
    public virtual string? UnavailableReason => null;

    /// <summary>Sends up to <paramref name="messages"/> messages over one connection to 127.0.0.1:<paramref name="port"/>.</summary>
    /// <param name="workload">The message and recipients.</param>
    /// <param name="port">Where smtp-sink (or the delay proxy) listens.</param>
    /// <param name="messages">How many messages.</param>
    /// <param name="timeLimit">In-process clients stop early after this long.</param>
    /// <param name="cancellationToken">Ctrl+C.</param>
    /// <returns>The timed part: connection set-up and QUIT excluded.</returns>
    public abstract Task<Measurement> RunAsync(Workload workload, int port, int messages, TimeSpan timeLimit, CancellationToken cancellationToken);
}

/// <summary>A client in this process: connect and EHLO untimed, then the message loop timed with allocation and CPU deltas.</summary>
internal abstract class InProcessClientRunner : ClientRunner
{
    public sealed override async Task<Measurement> RunAsync(Workload workload, int port, int messages, TimeSpan timeLimit, CancellationToken cancellationToken)
    {
        var session = await OpenAsync(workload, port, cancellationToken);
        try
        {
            var cpuBefore = CpuTimes.Self();

            // GetAllocatedBytesForCurrentThread misses continuations on pool threads: count the whole process.
            var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            var start = Stopwatch.GetTimestamp();
            var sent = 0;
            if (session is IBatchClientSession batch)
            {
                await batch.SendBatchAsync(messages, cancellationToken);
                sent = messages;
            }

            while (sent < messages)
            {
                var last = sent == messages - 1 || Stopwatch.GetElapsedTime(start) > timeLimit;
                await session.SendAsync(sent, last, cancellationToken);
                sent++;
                if (last)
                {
                    break;
                }
            }

            var elapsed = Stopwatch.GetElapsedTime(start);
            var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            var cpu = CpuTimes.Self() - cpuBefore;
            return new Measurement(sent, elapsed, allocated, cpu);
        }
        finally
        {
            await session.DisposeAsync();
        }
    }

    /// <summary>Connects and greets (untimed).</summary>
    protected abstract Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken);

    /// <summary>One open connection of a client.</summary>
    protected interface IClientSession : IAsyncDisposable
    {
        /// <summary>Sends message number <paramref name="index"/>; <paramref name="isLast"/> tells pipelining clients that nothing follows.</summary>
        /// <remarks>A <see cref="ValueTask"/>, and async implementations use <see cref="PoolingAsyncValueTaskMethodBuilder"/>, so that the
        /// harness's own wrapper allocates nothing per message and the allocation column is the client's alone.</remarks>
        ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken);
    }

    /// <summary>A client that sends the whole run in one call (a batch API); <c>--time-limit</c> does not apply to it.</summary>
    protected interface IBatchClientSession : IClientSession
    {
        /// <summary>Sends <paramref name="count"/> messages.</summary>
        Task SendBatchAsync(int count, CancellationToken cancellationToken);
    }

    /// <summary>Fails the run on an unexpected reply code.</summary>
    protected static void Expect(int expected, int actual, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what}: expected {expected}, got {actual}.");
        }
    }
}
