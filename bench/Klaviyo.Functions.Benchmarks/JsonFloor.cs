using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Klaviyo.Functions.Benchmarks;

/// <summary>
/// The floor the transform is measured against: System.Text.Json parses each event of the mix into a
/// <see cref="JsonDocument"/> and writes it out again (the least any transform of JSON into JSON does).
/// A ratio to it, measured in the same run, carries between machines where absolute figures do not.
/// </summary>
public static class JsonFloor
{
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    /// <summary>Parses and writes every event; returns the bytes written so nothing is optimised away.</summary>
    public static long ParseAndWriteAll(byte[][] events)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(4096);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        long bytes = 0;
        foreach (var e in events)
        {
            buffer.ResetWrittenCount();
            writer.Reset(buffer);
            using (var document = JsonDocument.Parse(e))
            {
                document.RootElement.WriteTo(writer);
            }
            writer.Flush();
            bytes += buffer.WrittenSpan.ToArray().Length;
        }
        return bytes;
    }
}
