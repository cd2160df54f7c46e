using MailPipe.Tests.Support;
using static MailPipe.Tests.Sending.SendScripts;

namespace MailPipe.Tests.Sending;

/// <summary>
/// RFC 5321 §4.5.3.2.6 gives a server 10 minutes (DataTerminationTimeout) to answer a message's end of data, and a
/// server does not read its input meanwhile (Postfix's cleanup, a content filter). A pipelined batch writes the next
/// transaction behind that end; once the socket's buffers are full its flush waits for the server too, and that wait
/// was bounded by SendTimeout (3 minutes): after 3 minutes of a legitimate 5-minute filter the batch broke the
/// connection, the first message Unknown. While an end's reply is due a waiting flush now has DataTerminationTimeout.
/// </summary>
public class SlowEndOfDataSendDeadlineTests
{
    private static readonly TimeSpan SendTimeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan DataTerminationTimeout = TimeSpan.FromMinutes(10);

    [Fact]
    public async Task A_flush_behind_an_end_of_data_waits_as_long_as_its_reply_may_take()
    {
        var clock = new ObservableTimeProvider();
        var processing = new TaskCompletionSource();
        var script = Script(Ehlo("PIPELINING", "CHUNKING"), "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m1@example.test>")
            .ExpectBytes(Bdat(Content(1), last: true))
            .Delay(TimeSpan.FromMinutes(5), clock, processing) // the end of data is processed; no byte more is read meanwhile
            .Then("C: RSET", "C: MAIL FROM:<sender@example.test>", "C: RCPT TO:<m2@example.test>")
            .ExpectBytes(Bdat(Content(2), last: true))
            .Then("S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 1", "S: 250 reset", "S: 250 ok", "S: 250 ok", "S: 250 2.0.0 queued 2");
        await using var server = ScriptedSmtpServer.Start(script, clientWriteLimit: 64);
        using var session = await ConnectedAsync(server, new SmtpSessionOptions
        {
            TimeProvider = clock,
            SendTimeout = SendTimeout,
            DataTerminationTimeout = DataTerminationTimeout,
            ReceiveTimeout = TimeSpan.FromMinutes(5),
        });

        var sending = session.SendBatchAsync([Message(1), Message(2)]);
        await processing.Task.Safe();
        await Task.WhenAny(clock.WaitUntilArmedAsync(SendTimeout, 1), clock.WaitUntilArmedAsync(DataTerminationTimeout, 1)).Unwrap().Safe();
        clock.Advance(TimeSpan.FromMinutes(5));

        var results = await sending.Safe();
        results.Should().OnlyContain(r => r.Outcome == SmtpSendOutcome.Accepted, string.Join("; ", results.Select(r => r.ToString())));
        session.IsConnected.Should().BeTrue();
        await server.WaitAsync();
    }
}
