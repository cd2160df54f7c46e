using MailPipe;
using MailPipe.Samples.WebApi;

var builder = WebApplication.CreateBuilder(args);

// Traces and metrics (MailPipe's and ASP.NET Core's) to the exporter of "Telemetry:Exporter": console, inmemory or none.
builder.AddSampleTelemetry();

// The whole SMTP set-up: the section "Smtp" of appsettings.json, or environment variables Smtp__Host, Smtp__TlsMode, ...
// The standard resilience pipeline (MailPipe.Resilience): total timeout, retries only to the recipients still to do,
// circuit breaker, attempt timeout; tuned by the section "SmtpResilience" (SmtpResilience__Retry__MaxRetryAttempts, ...).
builder.Services.AddMailPipe(builder.Configuration.GetSection("Smtp"))
    .AddStandardResilience(builder.Configuration.GetSection("SmtpResilience"))
    .AddHealthCheck(tags: ["ready"]);

builder.Services.AddProblemDetails();
builder.Services.AddSingleton<MailQueue>();
builder.Services.AddHostedService<MailQueueConsumer>();

var app = builder.Build();
app.UseStatusCodePages();

// Sends now, with the request's CancellationToken; 200 for every outcome (the outcome is data, not an HTTP error);
// "attempts" says how many mail transactions the retries took.
app.MapPost("/mail", async (MailRequest request, ISmtpSender sender, CancellationToken cancellationToken) =>
{
    if (!MailRequestValidator.TryCreateMessage(request, out var message, out var errors))
    {
        return Results.ValidationProblem(errors);
    }

    try
    {
        SmtpSendResult result = await sender.SendAsync(message, cancellationToken);
        return Results.Ok(MailResponse.From(result));
    }
    catch (ArgumentException ex)
    {
        return Results.Problem(ex.Message, statusCode: StatusCodes.Status400BadRequest, title: "The envelope cannot be sent");
    }
    catch (ObjectDisposedException)
    {
        return Results.Problem("The application is stopping.", statusCode: StatusCodes.Status503ServiceUnavailable);
    }
});

// Queues for the background consumer; 202 with the id, or 503 when the queue is full (or the application is stopping).
app.MapPost("/mail/queue", (MailRequest request, MailQueue queue, HttpContext context) =>
{
    if (!MailRequestValidator.TryCreateMessage(request, out var message, out var errors))
    {
        return Results.ValidationProblem(errors);
    }

    var mail = new QueuedMail(Guid.NewGuid().ToString("N"), message);
    if (!queue.TryEnqueue(mail))
    {
        context.Response.Headers.RetryAfter = "5";
        return Results.Problem("The mail queue is full or the application is stopping; try again later.", statusCode: StatusCodes.Status503ServiceUnavailable, title: "Mail queue unavailable");
    }

    return Results.Accepted(value: new QueuedResponse(mail.Id));
});

// 200 Healthy when the pool can lend a connection, 200 Degraded when every connection is sending (nothing to probe),
// 503 Unhealthy when a connection cannot be opened.
app.MapHealthChecks("/health");

app.Run();

/// <summary>The entry point, visible to WebApplicationFactory in the tests.</summary>
public partial class Program;
