using System.Runtime.CompilerServices;
using MailPipe.Transmission;

namespace MailPipe.Sending;

/// <summary>Which command of a transaction a reply answers, and so where it is filed.</summary>
internal enum ReplyKind : byte
{
    /// <summary>A command of the session's own (no transaction).</summary>
    None,
    Mail,
    Recipient,
    Data,
    Chunk,
    LastChunk,
    EndOfData,
    Reset,
}

/// <summary>What a queue entry's reply is filed with: the transaction, the command, the recipient's index.</summary>
internal readonly record struct ExpectedReply(MailTransaction? Transaction, ReplyKind Kind, int Index)
{
    /// <summary>As the channel's queue carries it (the channel never looks inside).</summary>
    public static implicit operator ReplyTag(ExpectedReply expected) => new(expected.Transaction, (byte)expected.Kind, expected.Index);

    /// <summary>Back from the channel's queue.</summary>
    public static implicit operator ExpectedReply(ReplyTag tag) => new(Unsafe.As<MailTransaction>(tag.Owner), (ReplyKind)tag.Kind, tag.Index); // only the sender attaches tags, always with its transactions

    /// <summary>Files <paramref name="reply"/> on the transaction.</summary>
    public void File(SmtpReply reply)
    {
        var tx = Transaction;
        switch (Kind)
        {
            case ReplyKind.Mail:
                tx!.MailReply = reply;
                break;
            case ReplyKind.Recipient:
                tx!.SetRecipientReply(Index, reply);
                break;
            case ReplyKind.Data:
                tx!.DataReply = reply;
                break;
            case ReplyKind.Chunk when reply.IsNegative:
                tx!.DataReply ??= reply;
                break;
            case ReplyKind.LastChunk:
            case ReplyKind.EndOfData:
                tx!.FinalReply = reply;
                break;
        }
    }
}
