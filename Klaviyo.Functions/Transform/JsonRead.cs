using System.Runtime.InteropServices;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>Typed, non-throwing reads of an event's JSON. "Present" means the key exists and is not <c>null</c>.</summary>
internal static class JsonRead
{
    public static bool IsPresent(this JsonElement element) =>
        element.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null);

    /// <summary>The property's value, or <c>default</c> (Undefined) when the key is missing, null or the parent is not an object.</summary>
    public static JsonElement Get(JsonElement parent, ReadOnlySpan<byte> name)
    {
        if (parent.ValueKind == JsonValueKind.Object && parent.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null)
        {
            return value;
        }
        return default;
    }

    /// <summary>Reads an optional object; a present value of another JSON type is a permanent error.</summary>
    public static TransformResult.Invalid? Object(JsonElement parent, ReadOnlySpan<byte> name, string field, out JsonElement value)
    {
        value = Get(parent, name);
        if (value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Object)
        {
            return null;
        }
        value = default;
        return new TransformResult.Invalid(field, "must be an object");
    }

    /// <summary>True for a non-empty string or a number: the forms an identifier or a text attribute can take.</summary>
    public static bool IsText(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number
        || (value.ValueKind == JsonValueKind.String && !IsEmptyString(value));

    public static bool IsEmptyString(JsonElement value) =>
        value.ValueKind == JsonValueKind.String && JsonMarshal.GetRawUtf8Value(value).Length == 2;

    /// <summary>
    /// Reads optional text (a string, or a number taken as its JSON text). An empty string counts as absent;
    /// any other JSON type is a permanent error.
    /// </summary>
    public static TransformResult.Invalid? Text(JsonElement value, string field, out string? text)
    {
        text = null;
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                var s = value.GetString()!;
                text = s.Length == 0 ? null : s;
                return null;
            case JsonValueKind.Number:
                text = value.GetRawText();
                return null;
            default:
                return new TransformResult.Invalid(field, "must be a string or a number");
        }
    }

    /// <summary>As <see cref="Text(JsonElement, string, out string?)"/>, keeping text that needs no unescaping in the event.</summary>
    public static TransformResult.Invalid? Text(JsonElement value, string field, out EventText text)
    {
        text = default;
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.String:
                text = EventText.Of(value);
                return null;
            case JsonValueKind.Number:
                text = EventText.Of(value);
                return null;
            default:
                return new TransformResult.Invalid(field, "must be a string or a number");
        }
    }

    /// <summary>Checks a value written as a Klaviyo string attribute: a string or a number (sent as text).</summary>
    public static TransformResult.Invalid? CheckText(JsonElement value, string field) =>
        value.ValueKind is JsonValueKind.Undefined or JsonValueKind.String or JsonValueKind.Number
            ? null
            : new TransformResult.Invalid(field, "must be a string or a number");

    /// <summary>Writes a string or number as a JSON string value (numbers as their JSON text).</summary>
    public static void WriteAsString(Utf8JsonWriter writer, JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            value.WriteTo(writer);
        }
        else
        {
            writer.WriteStringValue(JsonMarshal.GetRawUtf8Value(value));
        }
    }

    /// <summary>Reads a flag: a JSON boolean or the strings "true" / "false" (any case).</summary>
    public static TransformResult.Invalid? Flag(JsonElement value, string field, out bool? flag)
    {
        flag = null;
        switch (value.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return null;
            case JsonValueKind.True:
                flag = true;
                return null;
            case JsonValueKind.False:
                flag = false;
                return null;
            case JsonValueKind.String when value.ValueEquals("true"u8) || value.ValueEquals("false"u8):
                flag = value.ValueEquals("true"u8);
                return null;
            case JsonValueKind.String:
                var s = value.GetString();
                if (string.Equals(s, "true", StringComparison.OrdinalIgnoreCase) || string.Equals(s, "false", StringComparison.OrdinalIgnoreCase))
                {
                    flag = string.Equals(s, "true", StringComparison.OrdinalIgnoreCase);
                    return null;
                }
                break;
        }
        return new TransformResult.Invalid(field, "must be true or false");
    }
}

/// <summary>
/// Text read from an event: a string value with no escapes (or a number, as its JSON text) stays a reference into the
/// event and is written from its bytes; anything else is unescaped into a string once, as before. <c>default</c> is absent.
/// Valid only while the event's document is alive; <see cref="ToString"/> gives a string that outlives it.
/// </summary>
internal readonly struct EventText
{
    private readonly string? _text;
    private readonly JsonElement _value;

    private EventText(string? text, JsonElement value)
    {
        _text = text;
        _value = value;
    }

    public bool IsPresent => _text is not null || _value.ValueKind != JsonValueKind.Undefined;

    public bool IsAbsent => !IsPresent;

    public static EventText FromString(string? text) => text is null ? default : new(text, default);

    /// <summary>A string or number value; an empty string is absent. A string with escapes is unescaped now.</summary>
    public static EventText Of(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Number)
        {
            return new(null, value);
        }
        var raw = JsonMarshal.GetRawUtf8Value(value);
        if (raw.Length == 2)
        {
            return default;
        }
        return raw.IndexOf((byte)'\\') < 0 ? new(null, value) : new(value.GetString(), default);
    }

    /// <summary>The text as UTF-8 when it is kept in the event (no escapes), else empty.</summary>
    public ReadOnlySpan<byte> Utf8 => _value.ValueKind switch
    {
        JsonValueKind.String => JsonMarshal.GetRawUtf8Value(_value)[1..^1],
        JsonValueKind.Number => JsonMarshal.GetRawUtf8Value(_value),
        _ => default,
    };

    public void Write(Utf8JsonWriter writer, JsonEncodedText property)
    {
        if (_text is not null)
        {
            writer.WriteString(property, _text);
        }
        else
        {
            writer.WriteString(property, Utf8);
        }
    }

    public override string? ToString() =>
        _text ?? _value.ValueKind switch
        {
            JsonValueKind.String => _value.GetString(),
            JsonValueKind.Number => _value.GetRawText(),
            _ => null,
        };
}
