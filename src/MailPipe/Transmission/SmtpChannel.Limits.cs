namespace MailPipe.Transmission;

/// <summary>The tally of the commands a server may count against a connection's limit of "nonmail" commands.</summary>
internal sealed partial class SmtpChannel
{
    /// <summary>Whether the next RSET goes uncounted (one per message, and one at the start of the session).</summary>
    private bool _resetUncounted = true;

    private int _nonMailCommands;

    /// <summary>
    /// The commands of this connection that Exim counts against <c>smtp_accept_max_nonmail</c> (10 by default; past it
    /// "554 Too many nonmail commands" and the connection is dropped): every NOOP, VRFY, EXPN, HELP and ETRN, and every
    /// RSET but the first after the session starts or a message's data was taken (so, with RSET before each pipelined
    /// transaction, one per refused transaction). Counted as the replies arrive, in wire order; never reset (Exim does not reset it).
    /// </summary>
    public int NonMailCommands => Volatile.Read(ref _nonMailCommands);

    /// <summary>A new connection: nothing counted, one RSET free.</summary>
    private void StartNonMailTally()
    {
        _resetUncounted = true;
        Volatile.Write(ref _nonMailCommands, 0);
    }

    /// <summary>Counts a command by its reply (a BDAT LAST refused with 503 had no valid recipient: no data was taken).</summary>
    private void CountNonMail(string command, SmtpReply reply)
    {
        switch (command)
        {
            case ReplyRules.EndOfData:
            case ReplyRules.LastChunk when reply.Code != 503:
                _resetUncounted = true;
                break;
            case "RSET" when _resetUncounted:
                _resetUncounted = false;
                break;
            case "RSET" or "NOOP" or "VRFY" or "EXPN" or "HELP" or "ETRN":
                Interlocked.Increment(ref _nonMailCommands);
                break;
        }
    }
}
