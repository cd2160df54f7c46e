using MailPipe.Diagnostics;
using MailPipe.Protocol;
using Microsoft.Extensions.Logging;

namespace MailPipe.Transmission;

/// <summary>The transcript (<c>MailPipe.Protocol</c>, Trace): addresses masked unless the caller opted in, AUTH always redacted; and raw command lines.</summary>
internal sealed partial class SmtpChannel
{
    /// <summary>
    /// Writes a caller's raw command line (not flushed; checked and trimmed by the caller) and queues its expected
    /// reply under its verb. A raw <c>AUTH</c> starts an exchange whose continuation lines and 334 texts are secrets:
    /// they are named <c>AUTH</c> and redacted until a reply other than 334 ends it.
    /// </summary>
    /// <param name="line">The command line without CRLF.</param>
    public void WriteRawCommand(string line)
    {
        CheckUnsolicited();
        SmtpCommandWriter.WriteLine(OpenConnection.Output, line);
        var space = line.IndexOf(' ', StringComparison.Ordinal);
        var inAuthExchange = RedactServerText || SmtpAuthLines.IsAuthCommand(line);
        _replies.Add(inAuthExchange ? SmtpAuthLines.Command : space < 0 ? line : line[..space]);
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            Log.ClientLine(_protocolLog, RedactForTranscript(line));
        }

        RedactServerText = inAuthExchange;
    }

    private void LogReply(SmtpReply reply)
    {
        LastReply = reply;
        if (_protocolLog.IsEnabled(LogLevel.Trace))
        {
            var lines = reply.Lines;
            for (var i = 0; i < lines.Count; i++)
            {
                var separator = i == lines.Count - 1 ? " " : "-";
                Log.ServerLine(_protocolLog, string.Concat(reply.Code.ToString(System.Globalization.CultureInfo.InvariantCulture), separator, RedactServerText && reply.Code == 334 ? SmtpAuthLines.Redacted : MaskAddressesInText(lines[i])));
            }
        }
    }

    /// <summary>Parameters as the transcript shows them: the address of DSN ORCPT (RFC 3461 §4.2, <c>ORCPT=type;address</c>) masked like the path's.</summary>
    private string MaskParameters(string parameters)
    {
        if (_options.LogAddresses || parameters.IndexOf("ORCPT=", StringComparison.OrdinalIgnoreCase) < 0)
        {
            return parameters;
        }

        var words = parameters.Split(' ');
        for (var i = 0; i < words.Length; i++)
        {
            var word = words[i];
            var semicolon = word.IndexOf(';', StringComparison.Ordinal);
            if (word.StartsWith("ORCPT=", StringComparison.OrdinalIgnoreCase) && semicolon > 0)
            {
                words[i] = string.Concat(word.AsSpan(0, semicolon + 1), MaskAddress(word[(semicolon + 1)..]));
            }
        }

        return string.Join(' ', words);
    }

    /// <summary>The address as the transcript shows it: whole when the caller opted in, else with the local part masked.</summary>
    /// <param name="address">The address.</param>
    /// <returns>What the transcript shows.</returns>
    public string MaskAddress(string address)
    {
        if (_options.LogAddresses || address.Length == 0)
        {
            return address;
        }

        var at = address.LastIndexOf('@');
        return at < 0 ? "***" : string.Concat("***", address.AsSpan(at));
    }

    /// <summary>
    /// A server line as the transcript shows it: unless the caller opted in, the local part of every address in it is
    /// masked like the commands' (servers name the mailbox in their replies: <c>550 5.1.1 &lt;x@y&gt;: ... rejected</c>, VRFY).
    /// </summary>
    private string MaskAddressesInText(string text) => _options.LogAddresses ? text : SmtpAddressMask.InText(text);

    /// <summary>What the transcript shows of a caller's raw command: AUTH arguments are always redacted, addresses masked.</summary>
    private string RedactForTranscript(string line)
    {
        if (SmtpAuthLines.RedactRawLine(line, inExchange: RedactServerText) is { } authLine)
        {
            return authLine; // AUTH with its initial response hidden, or a continuation line of a raw AUTH exchange
        }

        if (!_options.LogAddresses && (line.StartsWith("MAIL ", StringComparison.OrdinalIgnoreCase)
            || line.StartsWith("RCPT ", StringComparison.OrdinalIgnoreCase) || line.StartsWith("VRFY ", StringComparison.OrdinalIgnoreCase)))
        {
            return line[..5] + "<masked>";
        }

        return line;
    }
}
