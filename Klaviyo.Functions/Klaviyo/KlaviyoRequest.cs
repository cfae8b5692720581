namespace Klaviyo.Functions.Klaviyo;

/// <summary>One Klaviyo call: a POST (or, for list removals, a DELETE) of a JSON:API body (UTF-8 JSON) to
/// <see cref="Path"/>, or a GET of <see cref="Path"/> (<see cref="Get"/>, no body), such as an import job's status.</summary>
internal sealed record KlaviyoRequest(KlaviyoEndpoint Endpoint, string Path, ReadOnlyMemory<byte> Body)
{
    /// <summary>POST unless built by <see cref="Get"/>.</summary>
    public HttpMethod Method { get; private init; } = HttpMethod.Post;

    /// <summary>A GET of <paramref name="path"/> (relative to <c>Klaviyo__BaseUrl</c>, query included), without a body.</summary>
    public static KlaviyoRequest Get(KlaviyoEndpoint endpoint, string path) => new(endpoint, path, ReadOnlyMemory<byte>.Empty) { Method = HttpMethod.Get };

    /// <summary>A DELETE of <paramref name="path"/> with a JSON:API body (list membership removal).</summary>
    public static KlaviyoRequest Delete(KlaviyoEndpoint endpoint, string path, ReadOnlyMemory<byte> body) => new(endpoint, path, body) { Method = HttpMethod.Delete };

    public override string ToString() => Method == HttpMethod.Get ? $"GET {Path}" : $"{Method} {Path} ({Body.Length} bytes)";
}
