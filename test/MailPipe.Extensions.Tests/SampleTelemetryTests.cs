using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using MailPipe.Extensions.Tests.Support;
using MailPipe.Samples.WebApi;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;

namespace MailPipe.Extensions.Tests;

/// <summary>The sample's one-line telemetry set-up (Telemetry:Exporter = inmemory) against the real Postfix.</summary>
public sealed class SampleTelemetryTests
{
    [Fact]
    public async Task Post_mail_exports_a_transaction_span_under_the_request_span_and_the_MailPipe_metrics()
    {
        TestServers.RequireListening(TestServers.PostfixPort);
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("Telemetry:Exporter", "inmemory"));
        using var client = app.CreateClient();
        var recipient = TestServers.UniqueRecipient("otel");

        // Our request's trace, told apart from the other tests' (the listeners are process-wide) by a traceparent of our own.
        var traceId = ActivityTraceId.CreateRandom();
        using var post = new HttpRequestMessage(HttpMethod.Post, "/mail")
        {
            Content = JsonContent.Create(new { from = "alice@example.test", to = new[] { recipient }, subject = "traced", body = "Hello.\n" }),
        };
        post.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        var response = await client.SendAsync(post);

        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var store = app.Services.GetRequiredService<TelemetryStore>();
        Activity? request = null;
        Activity? transaction = null;

        // The request span ends after the response reached the client: poll for it, up to the project's 30 s.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while ((request is null || transaction is null) && DateTime.UtcNow < deadline)
        {
            lock (store.Spans)
            {
                transaction = store.Spans.FirstOrDefault(s => s.Source.Name == "MailPipe" && s.OperationName == "smtp transaction" && s.TraceId == traceId);
                request = transaction is null ? null : store.Spans.FirstOrDefault(s => s.SpanId == transaction.ParentSpanId);
            }

            await Task.Delay(50);
        }

        transaction.Should().NotBeNull("MailPipe's transaction span is exported");
        request.Should().NotBeNull("the transaction span's parent is an exported span");
        request!.Source.Name.Should().Be("Microsoft.AspNetCore");
        request.DisplayName.Should().StartWith("POST");
        request.TraceId.Should().Be(traceId);
        transaction!.GetTagItem("smtp.outcome").Should().Be("accepted");
        lock (store.Spans)
        {
            store.Spans.Should().Contain(s => s.OperationName == "smtp tls" && (string?)s.GetTagItem("tls.protocol.version") != null);
        }

        app.Services.GetRequiredService<MeterProvider>().ForceFlush().Should().BeTrue();
        lock (store.Metrics)
        {
            store.Metrics.Select(m => m.Name).Should().Contain(["mailpipe.smtp.messages", "mailpipe.smtp.transaction.duration", "mailpipe.sender.connection.count"]);
        }
    }
    [Fact]
    public async Task The_connection_span_of_a_connection_closed_at_shutdown_is_exported()
    {
        // The consumer took ISmtpSender in its constructor, so the sender was made when the hosted services were, before
        // OpenTelemetry's hosted service made the tracer provider: the provider was disposed first, and the
        // "smtp connection" span that the sender's disposal ends (QUIT at shutdown) was never exported. Run as a
        // process stopped by SIGTERM, as a user runs it (WebApplicationFactory disposes its host synchronously).
        TestServers.RequireListening(TestServers.PostfixPort);
        var port = TestServers.UnusedPort();
        var start = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = AppContext.BaseDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "MailPipe.Samples.WebApi.dll"));
        start.Environment["Smtp__Host"] = TestServers.Host;
        start.Environment["Smtp__Port"] = TestServers.PostfixPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Smtp__TlsMode"] = "None";
        start.Environment["Smtp__Tls__CaFile"] = "";
        start.Environment["Telemetry__Exporter"] = "console";
        start.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        using var process = System.Diagnostics.Process.Start(start)!;
        var output = new System.Text.StringBuilder();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.OutputDataReceived += (_, e) =>
        {
            lock (output)
            {
                output.AppendLine(e.Data);
            }

            if (e.Data?.Contains("Application started", StringComparison.Ordinal) == true)
            {
                started.TrySetResult();
            }
        };
        process.BeginOutputReadLine();
        var error = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await started.Task.WaitAsync(limit.Token);
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var response = await client.PostAsJsonAsync("/mail", new { from = "alice@example.test", to = new[] { TestServers.UniqueRecipient("otel-close") }, subject = "s", body = "b" }, limit.Token);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync(limit.Token);
            }

            await process.WaitForExitAsync(limit.Token);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
            }
        }

        string text;
        lock (output)
        {
            text = output.ToString();
        }

        text.Should().Contain("Activity.DisplayName:        smtp transaction", await error);
        text.Should().Contain("Activity.DisplayName:        smtp connection", "the connection closed at shutdown ends its span before the tracer provider is disposed");
    }

    [Fact]
    public async Task The_in_memory_store_is_written_under_the_lock_its_readers_take()
    {
        // The exporter runs on the thread that ends a span, and the listeners are process-wide: the spans of every sender
        // and request in the process (the other test classes run in parallel) are added while a test reads the store.
        // Readers lock the list; if the exporter's Add does not take that lock, a reader's enumeration can throw
        // "Collection was modified".
        await using var app = SampleApp.ForPostfix(TestServers.PostfixPort, ("Telemetry:Exporter", "inmemory"));
        var store = app.Services.GetRequiredService<TelemetryStore>();
        using var source = new ActivitySource(MailPipeDiagnostics.ActivitySourceName);
        var name = $"store lock probe {Guid.NewGuid():N}";
        using var exported = new ManualResetEventSlim();
        Task ending;
        lock (store.Spans)
        {
            ending = Task.Run(() =>
            {
                source.StartActivity(name)!.Stop();
                exported.Set();
            });
            exported.Wait(TimeSpan.FromMilliseconds(500)).Should().BeFalse("the exporter's Add waits while a reader holds the lock");
        }

        await ending.WaitAsync(TimeSpan.FromSeconds(30));
        lock (store.Spans)
        {
            store.Spans.Should().ContainSingle(s => s.DisplayName == name);
        }
    }
}
