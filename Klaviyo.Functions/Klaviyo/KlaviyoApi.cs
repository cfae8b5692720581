namespace Klaviyo.Functions.Klaviyo;

/// <summary>The Klaviyo endpoints the relay calls (spec section 2). Used to pick a rate limiter.</summary>
internal enum KlaviyoEndpoint
{
    /// <summary><c>POST /api/profile-import</c>, schema <c>ProfileUpsertQuery</c>; L tier (75/s, 750/min).</summary>
    ProfileImport,
    /// <summary><c>POST /api/events</c>, schema <c>EventCreateQueryV2</c>; XL tier (350/s, 3,500/min).</summary>
    CreateEvent,
    /// <summary><c>POST /api/profile-subscription-bulk-create-jobs</c>, schema <c>SubscriptionCreateJobCreateQuery</c>; L tier.</summary>
    SubscribeProfiles,
    /// <summary><c>POST /api/lists/{listId}/relationships/profiles</c>, schema <c>ListMembersAddQuery</c>; M tier (10/s, 150/min).</summary>
    AddProfilesToList,
    /// <summary><c>POST /api/event-bulk-create-jobs</c>, schema <c>EventsBulkCreateJob</c>; M tier (10/s, 150/min).</summary>
    BulkCreateEvents,
    /// <summary><c>POST /api/profile-bulk-import-jobs</c>, schema <c>ProfileImportJobCreateQuery</c>; M tier.</summary>
    BulkImportProfiles,
    /// <summary><c>GET /api/profile-bulk-import-jobs/{id}</c>: an import job's status; M tier, its own budget.</summary>
    GetImportJob,
    /// <summary><c>GET /api/profile-bulk-import-jobs/{id}/import-errors</c>: per-profile errors; M tier, its own budget.</summary>
    GetImportErrors,
    /// <summary><c>POST /api/profile-subscription-bulk-delete-jobs</c>, schema <c>SubscriptionDeleteJobCreateQuery</c>;
    /// on the subscription endpoint's budget (spec 8.3).</summary>
    UnsubscribeProfiles,
    /// <summary><c>DELETE /api/lists/{listId}/relationships/profiles</c>, schema <c>ListMembersDeleteQuery</c>; on the
    /// list endpoint's budget (spec 8.3).</summary>
    RemoveProfilesFromList,
}

/// <summary>Paths, media type and default revision of Klaviyo's JSON:API.</summary>
internal static class KlaviyoApi
{
    public const string DefaultBaseUrl = "https://a.klaviyo.com";
    public const string DefaultRevision = "2026-07-15";
    public const string MediaType = "application/vnd.api+json";

    public const string ProfileImportPath = "/api/profile-import";
    public const string CreateEventPath = "/api/events";
    public const string SubscribeProfilesPath = "/api/profile-subscription-bulk-create-jobs";
    public const string BulkCreateEventsPath = "/api/event-bulk-create-jobs";
    public const string BulkImportProfilesPath = "/api/profile-bulk-import-jobs";
    public const string UnsubscribeProfilesPath = "/api/profile-subscription-bulk-delete-jobs";

    public static string ImportJobPath(string jobId) => $"/api/profile-bulk-import-jobs/{Uri.EscapeDataString(jobId)}";

    public static string ImportErrorsPath(string jobId) => $"/api/profile-bulk-import-jobs/{Uri.EscapeDataString(jobId)}/import-errors";

    public static string AddProfilesToListPath(string listId) => $"/api/lists/{listId}/relationships/profiles";

    /// <summary>The scopes a private key needs for the endpoint (Klaviyo's <c>x-klaviyo-scopes</c>); a key without them is answered 403.</summary>
    public static string Scopes(KlaviyoEndpoint endpoint) => endpoint switch
    {
        KlaviyoEndpoint.CreateEvent or KlaviyoEndpoint.BulkCreateEvents => "events:write",
        KlaviyoEndpoint.ProfileImport => "profiles:write",
        KlaviyoEndpoint.SubscribeProfiles or KlaviyoEndpoint.UnsubscribeProfiles => "lists:write, profiles:write, subscriptions:write",
        KlaviyoEndpoint.AddProfilesToList or KlaviyoEndpoint.RemoveProfilesFromList or KlaviyoEndpoint.BulkImportProfiles => "lists:write, profiles:write",
        KlaviyoEndpoint.GetImportJob or KlaviyoEndpoint.GetImportErrors => "lists:read, profiles:read",
        _ => "see Klaviyo's reference for this endpoint",
    };

    /// <summary>What a 401/403's dead-letter description tells the operator to check: the key, and the scopes the call needs.</summary>
    public static string UnauthorizedHint(KlaviyoEndpoint endpoint) => $"check Klaviyo__PrivateApiKey and its scopes (this call needs {Scopes(endpoint)})";

    /// <summary>The OpenAPI component schema each endpoint's body must satisfy.</summary>
    public static string SchemaName(KlaviyoEndpoint endpoint) => endpoint switch
    {
        KlaviyoEndpoint.ProfileImport => "ProfileUpsertQuery",
        KlaviyoEndpoint.CreateEvent => "EventCreateQueryV2",
        KlaviyoEndpoint.SubscribeProfiles => "SubscriptionCreateJobCreateQuery",
        KlaviyoEndpoint.AddProfilesToList => "ListMembersAddQuery",
        KlaviyoEndpoint.BulkCreateEvents => "EventsBulkCreateJob",
        KlaviyoEndpoint.BulkImportProfiles => "ProfileImportJobCreateQuery",
        KlaviyoEndpoint.UnsubscribeProfiles => "SubscriptionDeleteJobCreateQuery",
        KlaviyoEndpoint.RemoveProfilesFromList => "ListMembersDeleteQuery",
        _ => throw new ArgumentOutOfRangeException(nameof(endpoint), endpoint, "a GET has no request body"),
    };
}
