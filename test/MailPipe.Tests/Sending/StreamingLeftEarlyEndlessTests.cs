using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// A caller that leaves <see cref="AsyncSmtpSession.SendBatchStreamingAsync(IAsyncEnumerable{SmtpMessage}, CancellationToken)"/>
/// early (a <c>break</c> in its <c>await foreach</c>) over an endless sequence, such as a channel reader: the
/// enumeration's disposal went on taking messages from the sequence and sending them, results nobody could read any
/// more, and never returned (against Postfix: 2,010 messages sent in 10 s after the caller left, the disposal still
/// running). Leaving early takes no more messages: the ones taken are finished (never half-sent), and the call ends.
/// </summary>
public class StreamingLeftEarlyEndlessTests
{
    private static string[] OneByOne(int i) =>
        ["C: MAIL FROM:<sender@example.test>", "S: 250 ok", $"C: RCPT TO:<m{i}@example.test>", "S: 250 ok", "C: DATA", "S: 354 go", .. DataLines(Content(i)), $"S: 250 2.0.0 queued {i}"];

    [Fact]
    public async Task Leaving_early_takes_no_more_messages_from_an_endless_sequence()
    {
        var script = Script(Ehlo("8BITMIME")).Then(OneByOne(1)).Then(OneByOne(2)).Then("C: NOOP", "S: 250 ok");
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await ConnectedAsync(server);
        var source = new EndlessSource();

        await FluentActions.Awaiting(async () =>
        {
            // What `break` in an `await foreach` does after the first result, spelled out so that the sequence goes on
            // only once the caller has left: DisposeAsync marks the call left before it returns (it then waits for the
            // call to end). With `break` after CallerLeft was set, the sequence's thread could send message 2 and ask
            // for message 3 before the caller's thread got to its disposal on a loaded machine.
            var results = session.SendBatchStreamingAsync(source.Messages()).GetAsyncEnumerator();
            (await results.MoveNextAsync()).Should().BeTrue();

            // Message 2 was asked for before the caller leaves (it is taken and sent); none after it may be.
            await source.SecondAsked.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            var leaving = results.DisposeAsync();
            source.CallerLeft.TrySetResult();
            await leaving;
        }).Should().CompleteWithinAsync(ScriptedSmtpServer.SafetyTimeout);

        source.Taken.Should().Be(2, "no message is taken from the sequence after the caller left");
        (await session.NoopAsync().Safe()).Code.Should().Be(250);
        await server.WaitAsync();
    }

    private sealed class EndlessSource
    {
        private readonly TaskCompletionSource _secondAsked = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource CallerLeft { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task SecondAsked => _secondAsked.Task;

        public int Taken { get; private set; }

        public async IAsyncEnumerable<SmtpMessage> Messages()
        {
            await Task.Yield();
            Taken++;
            yield return Message(1);
            _secondAsked.TrySetResult();
            await CallerLeft.Task.WaitAsync(ScriptedSmtpServer.SafetyTimeout);
            for (var i = 2; ; i++)
            {
                Taken++;
                yield return Message(i);
            }
        }
    }
}
