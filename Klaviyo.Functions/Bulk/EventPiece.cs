using System.Text;
using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// One event exactly as the transform wrote it for <c>POST /api/events</c>, split into the two halves a bulk entry
/// takes: the profile resource object and the event's attributes without the profile. Reading the single call's
/// body (rather than writing events a second way) keeps the bulk attributes exactly those of the single call.
/// </summary>
internal sealed class EventPiece
{
    private EventPiece(byte[] profile, byte[] attributes, string profileKey, string identityKey, string dedupeKey)
    {
        Profile = profile;
        Attributes = attributes;
        ProfileKey = profileKey;
        IdentityKey = identityKey;
        DedupeKey = dedupeKey;
    }

    /// <summary>The profile resource object (<c>{"type":"profile",…}</c>) the event is for.</summary>
    public ReadOnlyMemory<byte> Profile { get; }

    /// <summary>The event's attributes (metric, properties, time, value, unique_id, …) without <c>profile</c>.</summary>
    public ReadOnlyMemory<byte> Attributes { get; }

    /// <summary>Events with equal keys share one bulk entry: the same profile object, byte for byte.</summary>
    public string ProfileKey { get; }

    /// <summary>The profile's identifiers.</summary>
    public string IdentityKey { get; }

    /// <summary>
    /// Identifiers + metric + unique_id (or time when there is none): Klaviyo fails a whole bulk call in which two
    /// events share it, and keeps only the first of them across calls.
    /// </summary>
    public string DedupeKey { get; }

    /// <summary>The single call's request, kept for the one-by-one fallback.</summary>
    public KlaviyoRequest? Single { get; private init; }

    /// <summary>Splits a <c>POST /api/events</c> request body (<c>EventCreateQueryV2</c>).</summary>
    public static EventPiece FromCreateEvent(KlaviyoRequest request)
    {
        if (request.Endpoint != KlaviyoEndpoint.CreateEvent)
        {
            throw new ArgumentException($"Expected a {KlaviyoEndpoint.CreateEvent} request, got {request.Endpoint}.", nameof(request));
        }
        using var document = JsonDocument.Parse(request.Body);
        var attributes = document.RootElement.GetProperty("data").GetProperty("attributes");
        var profile = attributes.GetProperty("profile").GetProperty("data");
        var metric = attributes.GetProperty("metric").GetProperty("data").GetProperty("attributes");
        var identity = BulkJson.IdentityKey(profile);
        var dedupe = string.Join('\u001e', identity, metric.GetRawText(),
            BulkJson.String(attributes, "unique_id") ?? "time:" + (BulkJson.String(attributes, "time") ?? ""));
        var profileBytes = BulkJson.Raw(profile);
        return new EventPiece(profileBytes, BulkJson.Without(attributes, "profile"), Encoding.UTF8.GetString(profileBytes), identity, dedupe)
        {
            Single = request,
        };
    }
}
