namespace Klaviyo.Functions.Klaviyo;

/// <summary>One Klaviyo call: always a POST of a JSON:API body (UTF-8 JSON) to <see cref="Path"/>.</summary>
internal sealed record KlaviyoRequest(KlaviyoEndpoint Endpoint, string Path, ReadOnlyMemory<byte> Body)
{
    public override string ToString() => $"POST {Path} ({Body.Length} bytes)";
}
