using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Events;

namespace Klaviyo.Functions.Local;

/// <summary>
/// Local mode's readable copy of its dead letters (the database keeps them too): one JSON object per line in <c>Local:DeadLetterPath</c> with
/// <c>messageId</c>, <c>reason</c>, <c>description</c>, <c>attempt</c>, <c>deadLetteredAt</c> and <c>event</c> (spec section 9).
/// </summary>
internal sealed class DeadLetterFile : IDisposable
{
    /// <summary>UTF-8 without a byte-order mark: strict JSON-lines readers reject a BOM on the first line.</summary>
    private static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly TimeProvider _time;

    /// <summary>Opens the file's place at start-up: a path that cannot be appended to throws
    /// <see cref="LocalStartupException"/> naming <c>Local__DeadLetterPath</c>, instead of failing at the first dead
    /// letter. The file itself is created by the first dead letter.</summary>
    public DeadLetterFile(string path, TimeProvider? timeProvider = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        _time = timeProvider ?? TimeProvider.System;
        try
        {
            var directory = System.IO.Path.GetDirectoryName(Path);
            if (!string.IsNullOrEmpty(directory))
            {
                Directory.CreateDirectory(directory);
            }
            if (Directory.Exists(Path))
            {
                throw new IOException("it is a directory");
            }
            if (File.Exists(Path))
            {
                using var append = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            }
            else
            {
                using var probe = new FileStream(Path + "." + Guid.NewGuid().ToString("N") + ".probe", FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new LocalStartupException($"Local__DeadLetterPath: cannot write the dead-letter file '{Path}' ({ex.Message}). Set Local__DeadLetterPath to a file in a writable folder.");
        }
    }

    public string Path { get; }

    public async Task AppendAsync(string messageId, string reason, string? description, int attempt, ReadOnlyMemory<byte> eventBody, CancellationToken cancellationToken = default)
    {
        var line = Format(messageId, reason, description, attempt, _time.GetUtcNow(), eventBody);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await File.AppendAllTextAsync(Path, line, Utf8NoBom, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>One line of the file. The event is embedded as JSON when it parses, else as a string.</summary>
    public static string Format(string messageId, string reason, string? description, int attempt, DateTimeOffset at, ReadOnlyMemory<byte> eventBody)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(eventBody.Length + 256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("messageId", messageId);
            writer.WriteString("reason", reason);
            writer.WriteString("description", description);
            writer.WriteNumber("attempt", attempt);
            writer.WriteString("deadLetteredAt", EventTimestamp.Format(at));
            writer.WritePropertyName("event");
            if (IsJson(eventBody.Span))
            {
                writer.WriteRawValue(eventBody.Span, skipInputValidation: true);
            }
            else
            {
                writer.WriteStringValue(Encoding.UTF8.GetString(eventBody.Span));
            }
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }

    public void Dispose() => _gate.Dispose();

    private static bool IsJson(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body);
        try
        {
            if (!reader.Read())
            {
                return false;
            }
            reader.Skip();
            return !reader.Read();
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
