using MailPipe.Tests.Sending;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Interop;

/// <summary>
/// Courier-MTA 1.0.16's esmtpd (Debian 12's courier-mta, tried by hand in session 19) offers PIPELINING but silently
/// discards whatever arrived in the same read as a message's end of data: the RSET, MAIL, RCPT and DATA a DATA batch
/// writes behind the dot (RFC 2920 §3.1 allows them) get no reply, and the session waited for them until the reply
/// timeout. Commands written once the end-of-data reply has been read are answered. Courier says who it is in its EHLO
/// reply (<c>XVERP=Courier</c>, <c>XEXDATA</c>); with it MailPipe waits for each final reply before the next transaction.
/// </summary>
public sealed class CourierPipeliningTests
{
    private static readonly string[] CourierEhlo =
    [
        "S: 220 mail.example.test ESMTP",
        "C: EHLO client.example.test",
        "S: 250-mail.example.test Ok.",
        "S: 250-AUTH LOGIN PLAIN",
        "S: 250-STARTTLS",
        "S: 250-XVERP=Courier",
        "S: 250-XEXDATA",
        "S: 250-XSECURITY=NONE,STARTTLS",
        "S: 250-PIPELINING",
        "S: 250-8BITMIME",
        "S: 250-SMTPUTF8",
        "S: 250-SIZE",
        "S: 250 DSN",
    ];

    // Each transaction is written after the previous one's final reply ("C>"): an accepted one needs no RSET.
    private static string[] Transaction(int i) =>
    [
        "C> MAIL FROM:<sender@example.test> SIZE=30",
        $"C+ RCPT TO:<m{i}@example.test>",
        "C+ DATA",
        "S: 250 Ok.",
        "S: 250 Ok.",
        "S: 354 Ok.",
        .. SendScripts.DataLines(SendScripts.Content(i)),
        $"S: 250 Ok. 000000006B169EFD.00004AE{i}",
    ];

    [Fact]
    public async Task A_DATA_batch_waits_for_each_end_of_data_reply_before_the_next_transaction()
    {
        var script = SmtpScript.Parse([
            .. CourierEhlo,
            .. Transaction(0),
            .. Transaction(1),
            .. Transaction(2),
            "C> QUIT",
            "S: 221 Bye.",
            "CLOSE",
        ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var results = await session.SendBatchAsync([.. Enumerable.Range(0, 3).Select(SendScripts.Message)]).Safe();
        await session.QuitAsync().Safe();

        results.Select(r => r.Outcome).Should().OnlyContain(o => o == SmtpSendOutcome.Accepted);
        results.Select(r => r.FinalReply!.Text).Should().Equal("Ok. 000000006B169EFD.00004AE0", "Ok. 000000006B169EFD.00004AE1", "Ok. 000000006B169EFD.00004AE2");
        await server.WaitAsync();
    }

    [Fact]
    public async Task Courier_refusing_a_declared_SIZE_at_MAIL_with_534_then_502_to_RCPT_and_DATA_is_a_refused_message()
    {
        // A pin of Courier's reply codes outside RFC 5321's list: the message is Refused by its MAIL reply, nothing sent.
        var script = SmtpScript.Parse([
            .. CourierEhlo,
            "C> MAIL FROM:<sender@example.test> SIZE=30",
            "C+ RCPT TO:<m0@example.test>",
            "C+ DATA",
            "S: 534 SIZE=Message too big.",
            "S: 502 ESMTP command error",
            "S: 502 ESMTP command error",
            "C> QUIT",
            "S: 221 Bye.",
            "CLOSE",
        ]);
        await using var server = ScriptedSmtpServer.Start(script);
        using var session = await SendScripts.ConnectedAsync(server);

        var result = await session.SendAsync(SendScripts.Message(0)).Safe();
        await session.QuitAsync().Safe();

        result.Outcome.Should().Be(SmtpSendOutcome.Refused);
        result.MailReply!.Code.Should().Be(534);
        result.IsTransientFailure.Should().BeFalse();
        await server.WaitAsync();
    }
}
