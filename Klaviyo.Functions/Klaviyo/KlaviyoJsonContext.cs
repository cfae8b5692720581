using System.Text.Json.Serialization;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>Source-generated (de)serialisation of Klaviyo's answers: no reflection on the hot path.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(KlaviyoErrorDocument))]
[JsonSerializable(typeof(KlaviyoDataDocument))]
internal sealed partial class KlaviyoJsonContext : JsonSerializerContext;

/// <summary><c>{"errors": [...]}</c>. <c>status</c> is left out: it is not in Klaviyo's schema and arrives as number or string.</summary>
internal sealed class KlaviyoErrorDocument
{
    public List<KlaviyoErrorObject>? Errors { get; set; }
}

internal sealed class KlaviyoErrorObject
{
    public string? Id { get; set; }
    public string? Code { get; set; }
    public string? Title { get; set; }
    public string? Detail { get; set; }
    public KlaviyoErrorSource? Source { get; set; }
}

internal sealed class KlaviyoErrorSource
{
    public string? Pointer { get; set; }
    public string? Parameter { get; set; }
}

/// <summary><c>{"data": {"type": ..., "id": ...}}</c>: profile-import's answer carries the profile id.</summary>
internal sealed class KlaviyoDataDocument
{
    public KlaviyoResourceObject? Data { get; set; }
}

internal sealed class KlaviyoResourceObject
{
    public string? Type { get; set; }
    public string? Id { get; set; }
}
