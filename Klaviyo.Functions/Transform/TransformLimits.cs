using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Klaviyo.Functions.Transform;

/// <summary>
/// Size limits Klaviyo enforces that an event can break: every string (key or value) at most 100 KB
/// ("each string cannot be larger than 100 KB", Create Event). An event smaller than the limit cannot hold such a
/// string, so the walk only runs for large events.
/// </summary>
internal static class TransformLimits
{
    public const int MaxStringBytes = 100 * 1024;

    public static TransformResult.Invalid? CheckStrings(JsonElement root, int eventBytes) =>
        eventBytes <= MaxStringBytes ? null : Walk(root, null);

    private static TransformResult.Invalid? Walk(JsonElement element, string? path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    if (TooLong(JsonMarshal.GetRawUtf8PropertyName(property), () => property.Name))
                    {
                        return new TransformResult.Invalid(Join(path, "(key)"), Rule);
                    }
                    if (Walk(property.Value, Join(path, property.Name)) is { } error)
                    {
                        return error;
                    }
                }
                return null;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    if (Walk(item, string.Create(CultureInfo.InvariantCulture, $"{path}[{index}]")) is { } error)
                    {
                        return error;
                    }
                    index++;
                }
                return null;
            case JsonValueKind.String:
                return TooLong(JsonMarshal.GetRawUtf8Value(element), () => element.GetString()!)
                    ? new TransformResult.Invalid(path ?? "event", Rule)
                    : null;
            default:
                return null;
        }
    }

    private const string Rule = "string must not be larger than 100 KB (Klaviyo's limit)";

    private static string Join(string? path, string name) => path is null ? name : string.Concat(path, ".", name);

    // The raw token is the escaped form; only when it is over the limit is it worth unescaping to measure exactly.
    private static bool TooLong(ReadOnlySpan<byte> raw, Func<string> unescaped) =>
        raw.Length > MaxStringBytes && Encoding.UTF8.GetByteCount(unescaped()) > MaxStringBytes;
}
