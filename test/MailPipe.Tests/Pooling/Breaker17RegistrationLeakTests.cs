using System.Runtime.CompilerServices;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Pooling;

/// <summary>
/// A message's watch on its caller's token (a registration) is made after the message joined the queue, outside the
/// pool's lock. A disposal (or a batch) completing the message in between disposed no registration yet, and the one made
/// afterwards stayed on the caller's token: with a long-lived token (a host's stopping token, a service-wide one), each
/// such message, its content and the disposed sender stayed reachable until that token was cancelled or disposed.
/// </summary>
public sealed class Breaker17RegistrationLeakTests
{
    [Fact]
    public async Task A_message_completed_while_it_joins_the_queue_leaves_no_registration_on_a_long_lived_token()
    {
        using var longLived = new CancellationTokenSource();
        var weak = new List<WeakReference>();
        for (var round = 0; round < 800; round++)
        {
            await using var server = new LoopbackSmtpServer();
            var greet = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            server.GreetingGate = greet.Task; // nothing is sent: the messages wait until the disposal drops them
            var options = PoolTestMessages.Options(server.Port, maxConnections: 1);
            options.AcquireTimeout = Timeout.InfiniteTimeSpan;
            var sender = new SmtpSender(options);
            using var go = new ManualResetEventSlim();
            var spins = round * 97 % 20000;
            var messages = Messages(300, weak);
            var disposing = Task.Run(() =>
            {
                go.Wait();
                Thread.SpinWait(spins);
                sender.Dispose();
            });
            var sending = Task.Run(() =>
            {
                go.Wait();
                return Send(sender, messages, longLived.Token);
            });
            go.Set();
            await disposing.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            try
            {
                await sending.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            }
            catch (ObjectDisposedException)
            {
                // Disposed before the call.
            }

            messages = null!; // captured: the round's closure holds no message any more
            greet.SetResult();
            await sender.DisposeAsync();
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        weak.Count(w => w.IsAlive).Should().Be(0, "every message is done and nothing but the caller's long-lived token could hold it");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static List<SmtpMessage> Messages(int count, List<WeakReference> weak)
    {
        var messages = new List<SmtpMessage>(count);
        for (var i = 0; i < count; i++)
        {
            messages.Add(PoolTestMessages.Create("leak", i, bodyBytes: 16).Message);
        }

        weak.AddRange(messages.Select(m => new WeakReference(m)));
        return messages;
    }

    private static Task Send(SmtpSender sender, List<SmtpMessage> messages, CancellationToken token)
    {
        try
        {
            return sender.SendBatchAsync(messages, token);
        }
        catch (ObjectDisposedException ex)
        {
            return Task.FromException(ex);
        }
    }
}
