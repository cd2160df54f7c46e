using System.Buffers;
using System.Text;
using System.Text.Json;

namespace MailPipe.Cli;

/// <summary>One JSON object on one line, as every --json output of the CLI prints it.</summary>
internal static class JsonLine
{
    /// <summary>The buffer each thread writes its objects into, reused: a batch prints one object per message.</summary>
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    /// <summary>Writes an object whose members <paramref name="members"/> writes, and returns it as text (no line break).</summary>
    /// <param name="options">Writer options (encoder, no indentation).</param>
    /// <param name="members">Writes the members between the braces.</param>
    /// <returns>The JSON text.</returns>
    public static string Object(JsonWriterOptions options, Action<Utf8JsonWriter> members)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        using (var json = new Utf8JsonWriter(buffer, options))
        {
            json.WriteStartObject();
            members(json);
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
