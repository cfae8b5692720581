using System.Globalization;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// <c>FlattenProperties</c> (spec 3): nested objects become dotted keys (<c>a.b</c>), arrays of objects indexed keys
/// (<c>items[0].sku</c>); arrays of primitives stay arrays; an empty <c>{}</c> or <c>[]</c> stays as it is.
/// Nulls that flattening brings to the top level are left out, as top-level nulls are everywhere else.
/// </summary>
internal static class PropertyFlattener
{
    /// <summary>
    /// Lets <paramref name="writeObject"/> write the unflattened object into a scratch buffer, then writes its
    /// flattened form to <paramref name="writer"/>. Only used when the setting is on, so the default path writes once.
    /// </summary>
    public static TransformResult.Invalid? WriteFlattened(Utf8JsonWriter writer, Func<Utf8JsonWriter, TransformResult.Invalid?> writeObject)
    {
        var scratch = BodyBuffers.Scratch();
        if (writeObject(scratch) is { } error)
        {
            return error;
        }
        using var document = JsonDocument.Parse(BodyBuffers.ScratchWritten());
        Write(writer, document.RootElement);
        return null;
    }

    /// <summary>Writes <paramref name="obj"/> (a JSON object) flattened.</summary>
    public static void Write(Utf8JsonWriter writer, JsonElement obj)
    {
        writer.WriteStartObject();
        foreach (var property in obj.EnumerateObject())
        {
            WriteValue(writer, property.Name, property.Value);
        }
        writer.WriteEndObject();
    }

    private static void WriteValue(Utf8JsonWriter writer, string key, JsonElement value)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Null:
                return;
            case JsonValueKind.Object:
                if (IsEmptyObject(value))
                {
                    writer.WritePropertyName(key);
                    value.WriteTo(writer);
                    return;
                }
                foreach (var property in value.EnumerateObject())
                {
                    WriteValue(writer, string.Concat(key, ".", property.Name), property.Value);
                }
                return;
            case JsonValueKind.Array:
                if (value.GetArrayLength() == 0 || IsArrayOfPrimitives(value))
                {
                    writer.WritePropertyName(key);
                    value.WriteTo(writer);
                    return;
                }
                var index = 0;
                foreach (var item in value.EnumerateArray())
                {
                    WriteValue(writer, string.Concat(key, "[", index.ToString(CultureInfo.InvariantCulture), "]"), item);
                    index++;
                }
                return;
            default:
                writer.WritePropertyName(key);
                value.WriteTo(writer);
                return;
        }
    }

    private static bool IsEmptyObject(JsonElement value)
    {
        using var properties = value.EnumerateObject();
        return !properties.MoveNext();
    }

    private static bool IsArrayOfPrimitives(JsonElement array)
    {
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind is JsonValueKind.Object or JsonValueKind.Array)
            {
                return false;
            }
        }
        return true;
    }
}
