using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Per-thread reusable <see cref="Utf8JsonWriter"/>s over growable buffers. A body is written once and copied out as
/// an exact-size array, so the only allocation per body is the body itself. <see cref="Body"/> writes request bodies;
/// <see cref="Scratch"/> holds intermediate JSON (properties before flattening) while a main body is being written.
/// </summary>
internal sealed class BodyBuffers
{
    // Relaxed escaping keeps non-ASCII text and '+' readable; bodies go to an API, never into HTML.
    internal static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    // A buffer that grew past this (a very large event) is not kept for the next event.
    private const int MaxRetainedBytes = 256 * 1024;

    [ThreadStatic] private static BodyBuffers? t_main;
    [ThreadStatic] private static BodyBuffers? t_scratch;

    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _writer;

    private BodyBuffers() => _writer = new Utf8JsonWriter(_buffer, WriterOptions);

    /// <summary>Starts a request body on this thread's main writer.</summary>
    public static Utf8JsonWriter Body() => Begin(ref t_main);

    /// <summary>Starts an intermediate document on this thread's scratch writer.</summary>
    public static Utf8JsonWriter Scratch() => Begin(ref t_scratch);

    /// <summary>The scratch document written so far (valid until the next <see cref="Scratch"/>).</summary>
    public static ReadOnlyMemory<byte> ScratchWritten()
    {
        t_scratch!._writer.Flush();
        return t_scratch._buffer.WrittenMemory;
    }

    /// <summary>Completes the main body and copies it out.</summary>
    public static byte[] ToArray(Utf8JsonWriter writer)
    {
        writer.Flush();
        var buffers = t_main!;
        var body = buffers._buffer.WrittenSpan.ToArray();
        if (buffers._buffer.Capacity > MaxRetainedBytes)
        {
            t_main = null;
        }
        return body;
    }

    private static Utf8JsonWriter Begin(ref BodyBuffers? slot)
    {
        var buffers = slot ??= new BodyBuffers();
        if (buffers._buffer.Capacity > MaxRetainedBytes)
        {
            buffers = slot = new BodyBuffers();
        }
        buffers._buffer.ResetWrittenCount();
        buffers._writer.Reset(buffers._buffer);
        return buffers._writer;
    }
}
