using System.Text;
using MailPipe.Tests.Support;

namespace MailPipe.Tests.Session;

/// <summary>What the tests of data writes mixed with raw bytes inside DATA share (Breaker15DataSplitTests, Breaker16DataMixTests).</summary>
internal static class DataWriteScripts
{
    /// <summary>A server that takes DATA, expects <paramref name="expected"/> as the data on the wire and queues it.</summary>
    public static ScriptedSmtpServer ServerExpecting(string expected) => ScriptedSmtpServer.Start(SmtpScript
        .Parse("S: 220 mail.example.test ESMTP", "C: DATA", "S: 354 go ahead")
        .ExpectRaw(expected)
        .Send("250 2.0.0 queued"));

    /// <summary>Each write through WriteMessageDataAsync, or, prefixed <c>raw:</c>, through SendBytesAsync.</summary>
    public static async Task WriteAllAsync(AsyncSmtpSession session, string[] writes)
    {
        foreach (var write in writes)
        {
            if (write.StartsWith("raw:", StringComparison.Ordinal))
            {
                await session.SendBytesAsync(Encoding.ASCII.GetBytes(write[4..])).Safe();
            }
            else
            {
                await session.WriteMessageDataAsync(Encoding.ASCII.GetBytes(write)).Safe();
            }
        }
    }
}
