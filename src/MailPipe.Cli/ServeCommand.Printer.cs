using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>The output of serve: one line or JSON object per received message.</summary>
internal sealed partial class ServeCommand
{
    /// <summary>
    /// Prints the lines of <c>mailpipe serve</c>, one at a time from any session. When standard output fails (a full
    /// disk) standard error says so once and serve goes on without its lines: a message is saved before its line is
    /// printed, so a failure there must never turn into an error reply for a message already saved.
    /// </summary>
    private sealed class Printer(TextWriter output, TextWriter error, bool json)
    {
        private readonly Lock _lock = new();
        private bool _failed;

        public void Listening(IPEndPoint endPoint, EmbeddedServerOptions options, string? certificateOut)
        {
            var auth = options.Authenticator is null ? "off" : options.Authenticator.AcceptsAny ? "any credentials" : "one user";
            string line;
            if (json)
            {
                line = JsonLine.Object(JsonOptions, w =>
                {
                    w.WriteString("type", "listening");
                    w.WriteString("address", endPoint.Address.ToString());
                    w.WriteNumber("port", endPoint.Port);
                    w.WriteString("saveDir", options.SaveDirectory);
                    w.WriteNumber("maxSize", options.MaxMessageSize);
                    w.WriteNumber("maxRecipients", options.MaxRecipients);
                    w.WriteBoolean("starttls", options.Certificate is not null);
                    if (options.Certificate is { } certificate)
                    {
                        w.WriteString("certificateSha256", certificate.GetCertHashString(HashAlgorithmName.SHA256));
                        if (certificateOut is not null)
                        {
                            w.WriteString("certificateFile", certificateOut);
                        }
                    }

                    w.WriteString("auth", options.Authenticator is null ? "off" : options.Authenticator.AcceptsAny ? "any" : "user");
                    w.WriteBoolean("authRequired", options.AuthenticationRequired && options.Authenticator is not null);
                });
            }
            else
            {
                var tls = options.Certificate is { } certificate
                    ? $"STARTTLS (certificate SHA-256 {certificate.GetCertHashString(HashAlgorithmName.SHA256)}{(certificateOut is null ? string.Empty : ", written to " + certificateOut)})"
                    : "no STARTTLS";
                var required = options.AuthenticationRequired && options.Authenticator is not null ? ", required" : string.Empty;
                line = string.Create(
                    CultureInfo.InvariantCulture,
                    $"mailpipe serve: listening on {Display(endPoint)}, saving to {options.SaveDirectory}; SIZE {options.MaxMessageSize}, {tls}, AUTH {auth}{required}. Ctrl+C stops.");
            }

            Write(line);
        }

        public void Message(SavedMessage message)
        {
            string line;
            if (json)
            {
                line = JsonLine.Object(JsonOptions, w =>
                {
                    w.WriteString("type", "message");
                    w.WriteString("time", message.Time.ToString("O", CultureInfo.InvariantCulture));
                    w.WriteString("from", message.From);
                    w.WriteStartArray("to");
                    foreach (var to in message.To)
                    {
                        w.WriteStringValue(to);
                    }

                    w.WriteEndArray();
                    w.WriteNumber("size", message.Size);
                    w.WriteString("file", message.Path);
                    w.WriteString("client", Display(message.Remote));
                    w.WriteBoolean("tls", message.Tls);
                    if (message.User is null)
                    {
                        w.WriteNull("user");
                    }
                    else
                    {
                        w.WriteString("user", message.User);
                    }
                });
            }
            else
            {
                // The addresses and the AUTH user name are the client's text: no control character reaches the terminal.
                var extra = (message.Tls ? ", TLS" : string.Empty) + (message.User is null ? string.Empty : ", AUTH " + message.User);
                line = TerminalText.Sanitize(string.Create(
                    CultureInfo.InvariantCulture,
                    $"{message.Time:HH:mm:ss} from <{message.From}> to {string.Join(", ", message.To.Select(t => $"<{t}>"))}: {message.Size} bytes saved to {message.Path} ({Display(message.Remote)}{extra})"));
            }

            Write(line);
        }

        public void Stopped(int count)
        {
            Write(json
                ? JsonLine.Object(JsonOptions, w =>
                {
                    w.WriteString("type", "stopped");
                    w.WriteNumber("messages", count);
                })
                : string.Create(CultureInfo.InvariantCulture, $"mailpipe serve: stopped; {count} {(count == 1 ? "message" : "messages")} saved"));
        }

        private void Write(string line)
        {
            lock (_lock)
            {
                if (_failed)
                {
                    return;
                }

                try
                {
                    output.WriteLine(line);
                    output.Flush();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _failed = true;
                    try
                    {
                        error.WriteLine($"mailpipe serve: writing to standard output failed ({ex.InnerException?.Message ?? ex.Message}); serve goes on, saving messages without printing them");
                    }
                    catch (Exception again) when (again is IOException or UnauthorizedAccessException)
                    {
                        // Standard error fails too: nothing can be said.
                    }
                }
            }
        }
    }
}
