using System.Text.Json;
using System.Text.Json.Nodes;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Bulk;

/// <summary>
/// One profile exactly as the transform wrote it for <c>POST /api/profile-import</c>: the <c>data</c> resource
/// object, which is also one item of a bulk import job's <c>profiles.data</c> (klaviyo-api-facts 2.5).
/// </summary>
internal sealed class ProfilePiece
{
    private ProfilePiece(byte[] data, string identityKey)
    {
        Data = data;
        IdentityKey = identityKey;
    }

    /// <summary>The profile resource object: <c>{"type":"profile","attributes":{…}}</c>.</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>The profile's identifiers; pieces with equal keys are one profile (spec 8.3).</summary>
    public string IdentityKey { get; }

    public static ProfilePiece FromProfileImport(KlaviyoRequest request)
    {
        if (request.Endpoint != KlaviyoEndpoint.ProfileImport)
        {
            throw new ArgumentException($"Expected a {KlaviyoEndpoint.ProfileImport} request, got {request.Endpoint}.", nameof(request));
        }
        using var document = JsonDocument.Parse(request.Body);
        var data = document.RootElement.GetProperty("data");
        return new ProfilePiece(BulkJson.Raw(data), BulkJson.IdentityKey(data));
    }

    /// <summary>
    /// Several updates of one profile as one (spec 8.3): attributes merged key by key in the order given (event
    /// time, oldest first), the later value winning; <c>properties</c> and <c>location</c> merged key by key too,
    /// so an older update never overwrites a newer one and a key only the older one sent is kept.
    /// </summary>
    public static ProfilePiece Merge(IReadOnlyList<ProfilePiece> oldestFirst)
    {
        ArgumentOutOfRangeException.ThrowIfZero(oldestFirst.Count);
        if (oldestFirst.Count == 1)
        {
            return oldestFirst[0];
        }
        var merged = JsonNode.Parse(oldestFirst[0].Data.Span)!.AsObject();
        for (var i = 1; i < oldestFirst.Count; i++)
        {
            var next = JsonNode.Parse(oldestFirst[i].Data.Span)!.AsObject();
            foreach (var (key, value) in next.ToArray())
            {
                if (key == "attributes" && value is JsonObject attributes && merged[key] is JsonObject current)
                {
                    MergeAttributes(current, attributes);
                }
                else
                {
                    merged[key] = value?.DeepClone();
                }
            }
        }
        var bytes = BulkJson.SerializeToUtf8(merged);
        using var document = JsonDocument.Parse(bytes);
        return new ProfilePiece(bytes, BulkJson.IdentityKey(document.RootElement));
    }

    private static void MergeAttributes(JsonObject into, JsonObject from)
    {
        foreach (var (key, value) in from.ToArray())
        {
            if (key is "properties" or "location" && value is JsonObject inner && into[key] is JsonObject existing)
            {
                foreach (var (innerKey, innerValue) in inner.ToArray())
                {
                    existing[innerKey] = innerValue?.DeepClone();
                }
            }
            else
            {
                into[key] = value?.DeepClone();
            }
        }
    }
}

/// <summary>
/// What a profile's list step asks for, read from the step the transform planned (spec 5, identify/group): a
/// subscription with its own channels, or an add-to-list. The step is built with a stand-in profile id that is
/// dropped: subscription jobs need no profile id (spec 8.3), and only the list id is read from an add-to-list.
/// </summary>
internal sealed record ListTarget(string ListId, ReadOnlyMemory<byte>? Subscription)
{
    private const string StandInId = "STANDINPROFILEID";

    /// <summary>True for a subscription (<see cref="Subscription"/> holds the profile with its channels).</summary>
    public bool Subscribes => Subscription is not null;

    public static ListTarget FromStep(PlanStep step)
    {
        var request = step.Build(StandInId);
        switch (request.Endpoint)
        {
            case KlaviyoEndpoint.AddProfilesToList:
                const string prefix = "/api/lists/";
                var rest = request.Path[prefix.Length..];
                return new ListTarget(Uri.UnescapeDataString(rest[..rest.IndexOf('/', StringComparison.Ordinal)]), null);
            case KlaviyoEndpoint.SubscribeProfiles:
                using (var document = JsonDocument.Parse(request.Body))
                {
                    var data = document.RootElement.GetProperty("data");
                    var listId = data.GetProperty("relationships").GetProperty("list").GetProperty("data").GetProperty("id").GetString()!;
                    var profile = data.GetProperty("attributes").GetProperty("profiles").GetProperty("data")[0];
                    return new ListTarget(listId, BulkJson.Without(profile, "id"));
                }
            default:
                throw new ArgumentException($"A list step is {KlaviyoEndpoint.AddProfilesToList} or {KlaviyoEndpoint.SubscribeProfiles}, not {request.Endpoint}.", nameof(step));
        }
    }
}
