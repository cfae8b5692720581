namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>Small valid events of each type (spec sections 4–5), as JSON text.</summary>
internal static class SampleEvents
{
    public const string Identify = """{"type":"identify","messageId":"m-identify","userId":"u-1","traits":{"email":"ada@example.com","firstName":"Ada"}}""";
    public const string Track = """{"type":"track","messageId":"m-track","userId":"u-1","event":"Order Completed","properties":{"revenue":12.5,"currency":"EUR"}}""";
    public const string Page = """{"type":"page","messageId":"m-page","userId":"u-1","name":"Home"}""";
    public const string Screen = """{"type":"screen","messageId":"m-screen","userId":"u-1","name":"Home"}""";
    public const string Group = """{"type":"group","messageId":"m-group","userId":"u-1","groupId":"AbC123","traits":{}}""";
    public const string Alias = """{"type":"alias","messageId":"m-alias","userId":"u-1","previousId":"u-0"}""";

    /// <summary>A valid track event with the given messageId (or none when null).</summary>
    public static string TrackWithId(string? messageId, string eventName = "Clicked") => messageId is null
        ? $$"""{"type":"track","userId":"u-1","event":"{{eventName}}"}"""
        : $$"""{"type":"track","messageId":"{{messageId}}","userId":"u-1","event":"{{eventName}}"}""";

    /// <summary>A JSON array of <paramref name="count"/> valid track events with messageIds <c>m-0</c>, <c>m-1</c>, ….</summary>
    public static string TrackArray(int count) => "[" + string.Join(",", Enumerable.Range(0, count).Select(i => TrackWithId($"m-{i}"))) + "]";
}
