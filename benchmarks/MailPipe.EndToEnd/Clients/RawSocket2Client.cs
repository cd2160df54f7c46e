using System.Net.Sockets;
using System.Text;

namespace MailPipe.EndToEnd.Clients;

/// <summary>
/// What any .NET client can do with two connections and DATA (issue #10's reference for the ceiling): no SMTP library,
/// two plain <see cref="Socket"/>s, each a hand-written loop that sends a message's dot-stuffed content, its end of data
/// and the next message's RSET, MAIL, RCPT… and DATA in one write (RFC 2920 groups), then reads until the 354 — the RSET as
/// MailPipe sends it, because the next transaction goes out before the final reply is known and Postfix keeps a
/// transaction refused at its end of data open (see TransactionSender.Call.cs). No parsing beyond
/// counting the final lines of replies and checking their first digit, no per-message allocation. Not a client anyone
/// should use: it shows what round trips and the runtime's socket engine leave for the two connections of
/// <c>mailpipe-sender</c> and <c>mailpipe-batch2</c>.
/// </summary>
internal sealed class RawSocket2Client : InProcessClientRunner
{
    public override string Name => "socket-raw2";

    public override string Description => "no SMTP library: two Sockets, each a hand-written loop of [content + . + RSET + MAIL + RCPT… + DATA] in one write, then reading to the 354 (what round trips leave for 2 connections)";

    protected override async Task<IClientSession> OpenAsync(Workload workload, int port, CancellationToken cancellationToken)
    {
        var connections = new Connection[2];
        for (var i = 0; i < connections.Length; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync("127.0.0.1", port, cancellationToken);
            connections[i] = new Connection(socket);
            await connections[i].ExpectAsync(1, cancellationToken); // greeting
            await socket.SendAsync("EHLO client.example.test\r\n"u8.ToArray(), cancellationToken);
            await connections[i].ExpectAsync(1, cancellationToken);
        }

        var envelope = new StringBuilder().Append("MAIL FROM:<").Append(Workload.Sender).Append(">\r\n");
        foreach (var recipient in workload.Recipients)
        {
            envelope.Append("RCPT TO:<").Append(recipient).Append(">\r\n");
        }

        var envelopeBytes = Encoding.ASCII.GetBytes(envelope.Append("DATA\r\n").ToString());
        var content = MailPipeRawPipelinedClient.Stuff(workload.Message);
        return new Session(connections, envelopeBytes, content, [.. content, .. "RSET\r\n"u8, .. envelopeBytes], workload.Recipients.Count);
    }

    private sealed class Connection(Socket socket)
    {
        private readonly byte[] _buffer = new byte[4096];
        private int _column;

        public Socket Socket => socket;

        /// <summary>Reads until <paramref name="replies"/> final reply lines ("ddd " lines) have come; fails on a 4xx/5xx.</summary>
        public async ValueTask ExpectAsync(int replies, CancellationToken cancellationToken)
        {
            while (replies > 0)
            {
                var read = await socket.ReceiveAsync(_buffer, cancellationToken);
                if (read == 0)
                {
                    throw new InvalidOperationException("The server closed the connection.");
                }

                for (var i = 0; i < read; i++)
                {
                    var b = _buffer[i];
                    if (_column == 0 && b is (byte)'4' or (byte)'5')
                    {
                        throw new InvalidOperationException($"The server refused: {Encoding.ASCII.GetString(_buffer, i, read - i)}");
                    }

                    if (_column == 3 && b == (byte)' ')
                    {
                        replies--;
                    }

                    _column++;
                    if (b == (byte)'\n')
                    {
                        _column = 0;
                    }
                }
            }
        }
    }

    private sealed class Session(Connection[] connections, byte[] envelope, byte[] content, byte[] contentAndNextEnvelope, int recipients) : IBatchClientSession
    {
        public Task SendBatchAsync(int count, CancellationToken cancellationToken) =>
            Task.WhenAll(RunAsync(connections[0], count / 2, cancellationToken), RunAsync(connections[1], count - (count / 2), cancellationToken));

        public ValueTask SendAsync(int index, bool isLast, CancellationToken cancellationToken) =>
            throw new NotSupportedException("socket-raw2 sends whole runs only.");

        public async ValueTask DisposeAsync()
        {
            foreach (var connection in connections)
            {
                await connection.Socket.SendAsync("QUIT\r\n"u8.ToArray());
                connection.Socket.Dispose();
            }
        }

        private async Task RunAsync(Connection connection, int count, CancellationToken cancellationToken)
        {
            await Task.Yield();
            await connection.Socket.SendAsync(envelope, cancellationToken);
            await connection.ExpectAsync(recipients + 2, cancellationToken); // MAIL, RCPT…, DATA (354)
            for (var i = 0; i < count; i++)
            {
                var last = i == count - 1;
                await connection.Socket.SendAsync(last ? content : contentAndNextEnvelope, cancellationToken);
                await connection.ExpectAsync(last ? 1 : recipients + 4, cancellationToken); // end of data (+ RSET and the next envelope)
            }
        }
    }
}
