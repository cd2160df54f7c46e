using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Interop;

/// <summary>
/// Haraka 3.3.4 ("fix(security): reject pipelining after DATA", a defence against SMTP smuggling) answers every
/// command that arrives after the end of data before its own final reply with <c>503 Bad sequence of commands -
/// pipelined after end of DATA</c> and runs none of them, although RFC 2920 §3.1 allows them. MailPipe's DATA batches
/// write the next transaction (RSET, MAIL, RCPT, DATA) behind the dot: against Haraka every other message of a batch (and
/// of SmtpSender's coalesced batches) was refused with 503.
/// </summary>
public sealed class HarakaPipeliningTests
{
    private const string Pipelined = "S: 503 Bad sequence of commands - pipelined after end of DATA";

    private static string[] Envelope(int i, bool afterReplies) =>
    [
        (afterReplies ? "C> " : "C+ ") + "MAIL FROM:<sender@example.test>",
        $"C+ RCPT TO:<m{i}@example.test>",
        "C+ DATA",
    ];

    private static string[] Accepted(int i) =>
    [
        "S: 250 sender <sender@example.test> OK",
        $"S: 250 recipient <m{i}@example.test> OK",
        "S: 354 go ahead, make my day",
        .. SendScripts.DataLines(SendScripts.Content(i)),
    ];

    [Fact]
    public async Task A_transaction_refused_with_503_behind_the_end_of_data_is_sent_again_and_the_next_ones_wait_for_the_final_reply()
    {
        var script = SmtpScript.Parse([
            "S: 220 haraka.test ESMTP Haraka/3.3.4 ready",
            "C: EHLO client.example.test",
            "S: 250-haraka.test Hello runsc [127.0.0.1], Haraka is at your service.",
            "S: 250-PIPELINING",
            "S: 250 8BITMIME",
            .. Envelope(0, afterReplies: true),
            .. Accepted(0),
            "C+ RSET",
            .. Envelope(1, afterReplies: false),
            "S: 250 stored (0.1)",
            Pipelined, Pipelined, Pipelined, Pipelined,   // RSET, MAIL, RCPT, DATA of message 1: none was run
            "C> RSET",                                    // message 1 again, after every reply
            .. Envelope(1, afterReplies: false),
            "S: 250 reset",
            .. Accepted(1),
            "S: 250 stored (0.2)",                        // now the next MAIL waits for the final reply
            .. Envelope(2, afterReplies: true),
            .. Accepted(2),
            "S: 250 stored (0.3)",
            "C> QUIT",
            "S: 221 haraka.test closing connection.",
            "CLOSE",
        ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var results = await session.SendBatchAsync([.. Enumerable.Range(0, 3).Select(SendScripts.Message)]).Safe();
        await session.QuitAsync().Safe();

        results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
        results.Select(r => r.FinalReply!.Text).Should().Equal("stored (0.1)", "stored (0.2)", "stored (0.3)");
        results[1].MailReply!.Text.Should().Be("sender <sender@example.test> OK", "the replies to the refused attempt are forgotten");
        await server.WaitAsync();
    }
}
