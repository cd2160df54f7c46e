using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using SmtpServer;
using SmtpServer.IO;
using SmtpServer.Net;

namespace MailPipe.Cli.Tests;

/// <summary>
/// The embedded server's connections (issue #16's stall: ~45 ms per message from one small segment per reply, Nagle's
/// algorithm and the client's delayed ACK).
/// </summary>
public class ServerConnectionTests
{
    [Fact]
    public async Task Accepted_sockets_have_Nagle_off()
    {
        var factory = new ServerListenerFactory(new ServerLimits(TimeSpan.FromMinutes(1), 10));
        var definition = new EndpointDefinitionBuilder().Endpoint(new IPEndPoint(IPAddress.Loopback, 0)).Build();
        var started = new TaskCompletionSource<IPEndPoint>();
        factory.EndpointStarted += (_, e) => started.TrySetResult((IPEndPoint)e.LocalEndPoint);
        using var listener = factory.CreateListener(definition);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(await started.Task);

        using var pipe = (ReplyCoalescingPipe)await listener.GetPipeAsync(new FakeSessionContext(), CancellationToken.None);

        pipe.NoDelay.Should().BeTrue();
    }

    [Fact]
    public async Task A_reply_is_held_while_the_next_command_is_buffered_and_sent_with_the_next_when_the_server_would_wait()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var pipe = new ReplyCoalescingPipe(await listener.AcceptAsync(), TimeSpan.FromMinutes(1), () => { });
        await client.SendAsync("MAIL\r\nRCPT\r\n"u8.ToArray(), SocketFlags.None);

        var first = await ReadLineAsync(pipe.Input);
        await WriteReplyAsync(pipe.Output, "250 first");
        client.Poll(50_000, SelectMode.SelectRead).Should().BeFalse("the next command is already buffered, so the reply waits for its neighbour");
        var second = await ReadLineAsync(pipe.Input);
        await WriteReplyAsync(pipe.Output, "250 second");
        var read = pipe.Input.ReadAsync().AsTask();

        var buffer = new byte[256];
        var n = await client.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
        first.Should().Be("MAIL");
        second.Should().Be("RCPT");
        Encoding.ASCII.GetString(buffer, 0, n).Should().Be("250 first\r\n250 second\r\n");
        read.IsCompleted.Should().BeFalse("the server now waits for the client");
        client.Shutdown(SocketShutdown.Send);
        (await read).IsCompleted.Should().BeTrue();
    }

    [Fact]
    public async Task Held_replies_leave_when_the_session_completes_its_input()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        var closed = 0;
        var pipe = new ReplyCoalescingPipe(await listener.AcceptAsync(), TimeSpan.FromMinutes(1), () => closed++);

        await WriteReplyAsync(pipe.Output, "221 bye");
        await pipe.Input.CompleteAsync();
        pipe.Dispose();

        var buffer = new byte[256];
        var n = await client.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(TimeSpan.FromSeconds(30));
        Encoding.ASCII.GetString(buffer, 0, n).Should().Be("221 bye\r\n");
        closed.Should().Be(1);
    }

    private static async Task<string> ReadLineAsync(System.IO.Pipelines.PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            var position = result.Buffer.PositionOf((byte)'\n');
            if (position is { } end)
            {
                var line = Encoding.ASCII.GetString(result.Buffer.Slice(0, end).ToArray()).TrimEnd('\r');
                reader.AdvanceTo(result.Buffer.GetPosition(1, end));
                return line;
            }

            reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }
    }

    private static async Task WriteReplyAsync(System.IO.Pipelines.PipeWriter writer, string reply)
    {
        writer.Write(Encoding.ASCII.GetBytes(reply + "\r\n"));
        await writer.FlushAsync();
    }

    private sealed class FakeSessionContext : ISessionContext
    {
        public event EventHandler<SmtpCommandEventArgs>? CommandExecuting { add { } remove { } }

        public event EventHandler<SmtpCommandEventArgs>? CommandExecuted { add { } remove { } }

        public event EventHandler<SmtpResponseExceptionEventArgs>? ResponseException { add { } remove { } }

        public event EventHandler<EventArgs>? SessionAuthenticated { add { } remove { } }

        public Guid SessionId { get; } = Guid.NewGuid();

        public IServiceProvider ServiceProvider => throw new NotSupportedException();

        public ISmtpServerOptions ServerOptions => throw new NotSupportedException();

        public IEndpointDefinition EndpointDefinition => throw new NotSupportedException();

        public ISecurableDuplexPipe Pipe => throw new NotSupportedException();

        public AuthenticationContext Authentication => throw new NotSupportedException();

        public IDictionary<string, object> Properties { get; } = new Dictionary<string, object>();
    }
}
