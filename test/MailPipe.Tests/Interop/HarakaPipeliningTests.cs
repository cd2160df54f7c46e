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
    public async Task After_a_503_to_commands_pipelined_behind_the_end_of_data_the_next_transaction_waits_for_the_final_reply()
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
            "C> RSET",
            .. Envelope(2, afterReplies: false),
            "S: 250 reset",
            .. Accepted(2),
            "S: 250 stored (0.2)",                        // now the next MAIL waits for this
            .. Envelope(3, afterReplies: true),
            .. Accepted(3),
            "S: 250 stored (0.3)",
            "C> QUIT",
            "S: 221 haraka.test closing connection.",
            "CLOSE",
        ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var results = await session.SendBatchAsync([.. Enumerable.Range(0, 4).Select(SendScripts.Message)]).Safe();
        await session.QuitAsync().Safe();

        results.Select(r => r.Outcome).Should().Equal(SmtpSendOutcome.Accepted, SmtpSendOutcome.Refused, SmtpSendOutcome.Accepted, SmtpSendOutcome.Accepted);
        results[1].MailReply!.Code.Should().Be(503);
        await server.WaitAsync();
    }
}
