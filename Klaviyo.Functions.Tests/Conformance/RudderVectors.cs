using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Tests.TestSupport;

namespace Klaviyo.Functions.Tests.Conformance;

/// <summary>One reference request: the endpoint path and the JSON:API body the reference emits.</summary>
internal sealed record ReferenceRequest(string EndpointPath, JsonElement Body);

/// <summary>
/// One RudderStack reference vector, reduced to one event: processor vectors are one event each; router vectors
/// are split into their events (see <see cref="RudderVectors.LoadRouterEvents"/>).
/// </summary>
internal sealed record RudderVector(
    string CaseId,
    string File,
    string Description,
    string ApiVersion,
    JsonElement Settings,
    JsonElement Event,
    IReadOnlyList<ReferenceRequest>? ExpectedRequests,
    string? ExpectedError,
    string? ExpectedErrorType)
{
    public bool ExpectsError => ExpectedError is not null;

    public string EventType => Event.ValueKind == JsonValueKind.Object && Event.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
        ? t.GetString()!.ToLowerInvariant()
        : "";

    public override string ToString() => CaseId;
}

/// <summary>The reference settings (<c>destination.Config</c>) as the relay's <see cref="KlaviyoOptions"/>.</summary>
internal sealed record MappedSettings(KlaviyoOptions Options, IReadOnlyList<string> Failures, string? ListIdAdaptedFrom);

/// <summary>Loads the v2/v3 cases of <c>shared/reference/rudderstack-klaviyo-vectors</c>.</summary>
internal static class RudderVectors
{
    public static string Directory { get; } = Path.Combine(KlaviyoSchemas.SharedDirectory, "reference", "rudderstack-klaviyo-vectors");

    private static bool IsProfileImportPath(string? apiVersion) => apiVersion is "v2" or "v3";

    /// <summary>Every processor vector (and derived probe) whose <c>apiVersion</c> is v2 or v3.</summary>
    public static IReadOnlyList<RudderVector> LoadProcessorCases()
    {
        var files = System.IO.Directory.GetFiles(Directory, "processor__*.json")
            .Append(Path.Combine(Directory, "_derived__reference-probes.json"))
            .OrderBy(f => f, StringComparer.Ordinal);
        var cases = new List<RudderVector>();
        foreach (var file in files)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var v in doc.RootElement.EnumerateArray())
            {
                var apiVersion = v.TryGetProperty("apiVersion", out var av) && av.ValueKind == JsonValueKind.String ? av.GetString() : null;
                if (!IsProfileImportPath(apiVersion))
                {
                    continue;
                }
                var expect = v.GetProperty("expect");
                cases.Add(new RudderVector(
                    v.GetProperty("name").GetString()!,
                    Path.GetFileName(file),
                    v.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "",
                    apiVersion!,
                    v.GetProperty("settings").Clone(),
                    v.GetProperty("event").Clone(),
                    ReadRequests(expect),
                    ReadError(expect, out var errorType),
                    errorType));
            }
        }
        return cases;
    }

    /// <summary>
    /// The events of the v2/v3 router vectors, each with its own expectation. The reference router batches only
    /// subscriptions (reference §8.2): a batched output holds one profile-import per identify job, in job order, then
    /// one bulk job whose <c>profiles.data</c> concatenates the jobs' profiles in job order. The relay sends one event
    /// at a time, so each batch is split back into the per-event requests the processor path would emit.
    /// </summary>
    public static IReadOnlyList<RudderVector> LoadRouterEvents()
    {
        var cases = new List<RudderVector>();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "router__*.json").OrderBy(f => f, StringComparer.Ordinal))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var v in doc.RootElement.EnumerateArray())
            {
                var apiVersion = v.TryGetProperty("apiVersion", out var av) && av.ValueKind == JsonValueKind.String ? av.GetString() : null;
                if (!IsProfileImportPath(apiVersion))
                {
                    continue;
                }
                var caseSettings = v.GetProperty("settings");
                var events = v.GetProperty("events").EnumerateArray().ToList();
                var byJob = new Dictionary<string, (List<ReferenceRequest>? Requests, string? Error, string? ErrorType)>(StringComparer.Ordinal);
                foreach (var output in v.GetProperty("expect").GetProperty("outputs").EnumerateArray())
                {
                    var jobIds = output.GetProperty("jobIds").EnumerateArray().Select(j => j.ToString()).ToList();
                    if (output.TryGetProperty("error", out var error))
                    {
                        foreach (var job in jobIds)
                        {
                            byJob[job] = (null, error.GetProperty("message").GetString(), error.TryGetProperty("errorType", out var et) ? et.GetString() : null);
                        }
                        continue;
                    }
                    var requests = ReadRequests(output)!;
                    if (jobIds.Count == 1)
                    {
                        byJob[jobIds[0]] = (requests.ToList(), null, null);
                        continue;
                    }
                    SplitBatch(jobIds, events, requests, byJob);
                }
                var index = 0;
                foreach (var e in events)
                {
                    index++;
                    if (e.TryGetProperty("alreadyTransformed", out var done) && done.ValueKind == JsonValueKind.True)
                    {
                        continue;
                    }
                    var job = e.GetProperty("jobId").ToString();
                    if (!byJob.TryGetValue(job, out var expected))
                    {
                        throw new InvalidDataException($"{Path.GetFileName(file)} {v.GetProperty("name")}: no output names job {job}");
                    }
                    cases.Add(new RudderVector(
                        $"{v.GetProperty("name").GetString()}#job{job}",
                        Path.GetFileName(file),
                        v.TryGetProperty("description", out var d) ? d.GetString() ?? "" : "",
                        apiVersion!,
                        (e.TryGetProperty("settings", out var own) ? own : caseSettings).Clone(),
                        e.GetProperty("message").Clone(),
                        expected.Requests,
                        expected.Error,
                        expected.ErrorType));
                }
            }
        }
        return cases;
    }

    private static void SplitBatch(
        List<string> jobIds,
        List<JsonElement> events,
        IReadOnlyList<ReferenceRequest> requests,
        Dictionary<string, (List<ReferenceRequest>? Requests, string? Error, string? ErrorType)> byJob)
    {
        var imports = new Queue<ReferenceRequest>(requests.Where(r => r.EndpointPath == KlaviyoApi.ProfileImportPath));
        var bulk = requests.Where(r => r.EndpointPath != KlaviyoApi.ProfileImportPath).ToList();
        if (bulk.Count != 1)
        {
            throw new InvalidDataException($"a batched output of jobs {string.Join(",", jobIds)} holds {bulk.Count} bulk requests");
        }
        var bulkBody = bulk[0].Body;
        var profiles = bulkBody.GetProperty("data").GetProperty("attributes").GetProperty("profiles").GetProperty("data").EnumerateArray().ToList();
        if (profiles.Count != jobIds.Count)
        {
            throw new InvalidDataException($"a batch of {jobIds.Count} jobs holds {profiles.Count} profiles");
        }
        for (var i = 0; i < jobIds.Count; i++)
        {
            var message = events.Single(e => e.GetProperty("jobId").ToString() == jobIds[i]).GetProperty("message");
            var own = new List<ReferenceRequest>();
            if (string.Equals(message.GetProperty("type").GetString(), "identify", StringComparison.OrdinalIgnoreCase))
            {
                own.Add(imports.Dequeue());
            }
            own.Add(new ReferenceRequest(bulk[0].EndpointPath, WithSingleProfile(bulkBody, profiles[i])));
            byJob[jobIds[i]] = (own, null, null);
        }
        if (imports.Count != 0)
        {
            throw new InvalidDataException($"a batch of jobs {string.Join(",", jobIds)} holds more profile-imports than identify events");
        }
    }

    private static JsonElement WithSingleProfile(JsonElement bulkBody, JsonElement profile)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(bulkBody.GetRawText())!;
        node["data"]!["attributes"]!["profiles"]!["data"] = new System.Text.Json.Nodes.JsonArray(System.Text.Json.Nodes.JsonNode.Parse(profile.GetRawText()));
        return JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();
    }

    private static IReadOnlyList<ReferenceRequest>? ReadRequests(JsonElement expect)
    {
        if (!expect.TryGetProperty("requests", out var requests))
        {
            return null;
        }
        return requests.EnumerateArray()
            .Select(r => new ReferenceRequest(r.GetProperty("endpointPath").GetString()!, r.GetProperty("body").Clone()))
            .ToList();
    }

    private static string? ReadError(JsonElement expect, out string? errorType)
    {
        errorType = null;
        if (!expect.TryGetProperty("error", out var error))
        {
            return null;
        }
        errorType = error.TryGetProperty("errorType", out var et) ? et.GetString() : null;
        return error.GetProperty("message").GetString();
    }

    /// <summary>
    /// Maps <c>destination.Config</c> to <see cref="KlaviyoOptions"/> as a user moving off RudderStack would:
    /// privateApiKey, publicApiKey, listId, the consent array (comma-joined), enforceEmailAsPrimary,
    /// flattenProperties, sendPageAsTrack, additionalPageInfo. apiVersion has no counterpart: the relay speaks one
    /// revision. A listId the relay's start-up validation refuses (not letters and digits, spec §3) is adapted to
    /// its letters and digits so that the case can still be compared; list ids from the reference are adapted the same way.
    /// </summary>
    public static MappedSettings MapSettings(JsonElement settings)
    {
        var options = new KlaviyoOptions
        {
            PrivateApiKey = String(settings, "privateApiKey") ?? "",
            PublicApiKey = String(settings, "publicApiKey") ?? "",
            EnforceEmailAsPrimary = Bool(settings, "enforceEmailAsPrimary"),
            FlattenProperties = Bool(settings, "flattenProperties"),
            SendPageAsTrack = Bool(settings, "sendPageAsTrack"),
            AdditionalPageInfo = Bool(settings, "additionalPageInfo"),
        };
        if (settings.TryGetProperty("consent", out var consent))
        {
            options.Consent = consent.ValueKind switch
            {
                JsonValueKind.Array => string.Join(",", consent.EnumerateArray().Select(c => c.ToString())),
                JsonValueKind.String => consent.GetString()!,
                _ => options.Consent,
            };
        }
        string? adaptedFrom = null;
        var listId = String(settings, "listId");
        if (!string.IsNullOrEmpty(listId))
        {
            options.ListId = AdaptListId(listId);
            if (options.ListId != listId)
            {
                adaptedFrom = listId;
            }
        }
        var result = new KlaviyoOptionsValidator().Validate(null, options);
        return new MappedSettings(options, result.Failed ? result.Failures!.ToList() : [], adaptedFrom);
    }

    public static string AdaptListId(string listId) => new(listId.Where(char.IsAsciiLetterOrDigit).ToArray());

    private static string? String(JsonElement settings, string name) =>
        settings.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool Bool(JsonElement settings, string name) =>
        settings.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True
            || (v.ValueKind == JsonValueKind.String && bool.TryParse(v.GetString(), out var b) && b));
}
