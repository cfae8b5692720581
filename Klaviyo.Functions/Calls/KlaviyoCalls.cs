using System.Text.Json;
using Klaviyo.Functions.Klaviyo;
using Klaviyo.Functions.Transform;

namespace Klaviyo.Functions.Calls;

/// <summary>
/// The one writer of Klaviyo request bodies: one method per operation, each writing its single call and its bulk call
/// from the same parts (<see cref="DeliveryParts"/>), so single and bulk bodies agree by construction. Schemas:
/// <c>ProfileUpsertQuery</c>, <c>EventCreateQueryV2</c>, <c>SubscriptionCreateJobCreateQuery</c>,
/// <c>ListMembersAddQuery</c>, <c>ProfileImportJobCreateQuery</c>, <c>EventsBulkCreateJob</c>,
/// <c>DataPrivacyCreateDeletionJobQuery</c>.
/// </summary>
internal static class KlaviyoCalls
{
    private static readonly byte[] s_importStart = """{"data":"""u8.ToArray();
    private static readonly byte[] s_eventStart = """{"data":{"type":"event","attributes":"""u8.ToArray();
    private static readonly byte[] s_eventProfile = ""","profile":{"data":"""u8.ToArray();

    /// <summary>The calls one message makes on its own (below <c>Relay__BulkThreshold</c>, or sent back by a bulk call):
    /// an event's create-event; a profile's profile-import, then its list step with the id that import answers.</summary>
    public static RequestPlan SinglePlan(DeliveryParts parts) => parts switch
    {
        // An order's events in order, Placed Order first; each carries its unique_id, so a retry re-sends them all
        // and Klaviyo keeps one of each.
        EventParts e => new RequestPlan([.. e.Events.Select(ev => PlanStep.Fixed(CreateEvent(ev)))], e.Warnings),
        ProfileParts { List: null } p => new RequestPlan([PlanStep.Fixed(ProfileImport(p.Profile), yieldsProfileId: true)], p.Warnings),
        ProfileParts { List: { } list } p => new RequestPlan(
            [PlanStep.Fixed(ProfileImport(p.Profile), yieldsProfileId: true), ListStep(list)], p.Warnings),
        // A deletion's calls depend on what its lookup finds: Relay.DeletionProcessor makes them (DeletionJob, ProfilesByExternalId).
        _ => throw new ArgumentOutOfRangeException(nameof(parts), parts.GetType().Name, "no fixed plan for these parts"),
    };

    extension(TransformResult.Planned planned)
    {
        /// <summary>The single calls of a planned event (<see cref="SinglePlan"/>).</summary>
        public RequestPlan Plan => SinglePlan(planned.Parts);
    }

    private static PlanStep ListStep(ListPart list) => list.Action switch
    {
        ListAction.Subscribe => PlanStep.WithProfileId(KlaviyoEndpoint.SubscribeProfiles, id => Subscribe(list.ListId, [list.Subscriber!], [id])),
        // Klaviyo unsubscribes by email and phone; no profile id needed.
        ListAction.Unsubscribe => PlanStep.Fixed(Unsubscribe(list.ListId, [list.Subscriber!])),
        ListAction.Remove => PlanStep.WithProfileId(KlaviyoEndpoint.RemoveProfilesFromList, id => RemoveFromList(list.ListId, [id])),
        _ => PlanStep.WithProfileId(KlaviyoEndpoint.AddProfilesToList, id => AddToList(list.ListId, [id])),
    };

    /// <summary><c>POST /api/profile-import</c>: <c>{"data": profile}</c>.</summary>
    public static KlaviyoRequest ProfileImport(ProfilePart profile)
    {
        var data = profile.Data.Span;
        var body = new byte[s_importStart.Length + data.Length + 1];
        s_importStart.CopyTo(body, 0);
        data.CopyTo(body.AsSpan(s_importStart.Length));
        body[^1] = (byte)'}';
        return new KlaviyoRequest(KlaviyoEndpoint.ProfileImport, KlaviyoApi.ProfileImportPath, body);
    }

    /// <summary><c>POST /api/events</c>: the event's attributes with <c>profile</c> added as their last member.</summary>
    public static KlaviyoRequest CreateEvent(EventPart @event)
    {
        var attributes = @event.Attributes.Span;
        var profile = @event.Profile.Data.Span;
        // The attributes object without its closing brace, then "profile", then that brace and the outer two, plus
        // the one closing the profile wrapper.
        var body = new byte[s_eventStart.Length + (attributes.Length - 1) + s_eventProfile.Length + profile.Length + 4];
        var at = 0;
        Append(body, ref at, s_eventStart);
        Append(body, ref at, attributes[..^1]);
        Append(body, ref at, s_eventProfile);
        Append(body, ref at, profile);
        Append(body, ref at, "}}}}"u8);
        return new KlaviyoRequest(KlaviyoEndpoint.CreateEvent, KlaviyoApi.CreateEventPath, body);
    }

    /// <summary><c>POST /api/event-bulk-create-jobs</c>: one entry per profile with its events (spec 8.2).</summary>
    public static KlaviyoRequest EventBulkJob(IReadOnlyList<(ProfilePart Profile, IReadOnlyList<EventPart> Events)> entries)
    {
        var w = BodyBuffers.Body();
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartObject();
        w.WriteString("type", "event-bulk-create-job");
        w.WritePropertyName("attributes");
        w.WriteStartObject();
        w.WritePropertyName("events-bulk-create");
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartArray();
        foreach (var (profile, events) in entries)
        {
            w.WriteStartObject();
            w.WriteString("type", "event-bulk-create");
            w.WritePropertyName("attributes");
            w.WriteStartObject();
            w.WritePropertyName("profile");
            w.WriteStartObject();
            w.WritePropertyName("data");
            w.WriteRawValue(profile.Data.Span, skipInputValidation: true);
            w.WriteEndObject();
            w.WritePropertyName("events");
            w.WriteStartObject();
            w.WritePropertyName("data");
            w.WriteStartArray();
            foreach (var @event in events)
            {
                w.WriteStartObject();
                w.WriteString("type", "event");
                w.WritePropertyName("attributes");
                w.WriteRawValue(@event.Attributes.Span, skipInputValidation: true);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            EndObjects(w, 3);
        }
        w.WriteEndArray();
        EndObjects(w, 4);
        var body = BodyBuffers.ToArray(w);
        return new KlaviyoRequest(KlaviyoEndpoint.BulkCreateEvents, KlaviyoApi.BulkCreateEventsPath, body);
    }

    /// <summary><c>POST /api/profile-bulk-import-jobs</c>: the profiles, added to <paramref name="listId"/> when set
    /// (<c>relationships.lists</c> replaces the per-profile list call, spec 8.3).</summary>
    public static KlaviyoRequest ProfileImportJob(string? listId, IReadOnlyList<ProfilePart> profiles)
    {
        var w = BodyBuffers.Body();
        WriteProfilesJobStart(w, "profile-bulk-import-job");
        foreach (var profile in profiles)
        {
            w.WriteRawValue(profile.Data.Span, skipInputValidation: true);
        }
        WriteProfilesJobEnd(w);
        if (listId is not null)
        {
            w.WritePropertyName("relationships");
            w.WriteStartObject();
            w.WritePropertyName("lists");
            w.WriteStartObject();
            w.WritePropertyName("data");
            w.WriteStartArray();
            WriteList(w, listId);
            w.WriteEndArray();
            EndObjects(w, 2);
        }
        EndObjects(w, 2);
        var body = BodyBuffers.ToArray(w);
        return new KlaviyoRequest(KlaviyoEndpoint.BulkImportProfiles, KlaviyoApi.BulkImportProfilesPath, body);
    }

    /// <summary>
    /// <c>POST /api/profile-subscription-bulk-create-jobs</c>: one list, each subscriber with its own channels. The
    /// single call names the profile (<paramref name="profileIds"/>, from its profile-import); bulk calls need no id.
    /// </summary>
    /// <remarks>The job-level <c>custom_source</c> and <c>historical_import</c> come from the first subscriber: only
    /// subscribers that agree on them share a call (<see cref="SubscriptionKey"/>).</remarks>
    public static KlaviyoRequest Subscribe(string listId, IReadOnlyList<SubscriberPart> subscribers, IReadOnlyList<string?>? profileIds = null)
    {
        var w = BodyBuffers.Body();
        WriteProfilesJobStart(w, "profile-subscription-bulk-create-job", subscribers[0].CustomSource, historical: subscribers[0].ConsentedAt is not null);
        for (var i = 0; i < subscribers.Count; i++)
        {
            WriteSubscriber(w, subscribers[i], profileIds?[i], "SUBSCRIBED");
        }
        WriteProfilesJobEnd(w);
        WriteListRelationship(w, listId);
        var body = BodyBuffers.ToArray(w);
        return new KlaviyoRequest(KlaviyoEndpoint.SubscribeProfiles, KlaviyoApi.SubscribeProfilesPath, body);
    }

    /// <summary>What must be equal for two subscriptions to share one call: the list and the job-level attributes.</summary>
    public static (string ListId, bool Historical, string? CustomSource) SubscriptionKey(string listId, SubscriberPart subscriber) =>
        (listId, subscriber.ConsentedAt is not null, subscriber.CustomSource);

    /// <summary>
    /// <c>POST /api/profile-subscription-bulk-delete-jobs</c>: the profiles' marketing consent revoked on their channels,
    /// by email and phone (Klaviyo takes no profile id here). A profile not on the list is unsubscribed from marketing
    /// altogether (Klaviyo's rule).
    /// </summary>
    public static KlaviyoRequest Unsubscribe(string listId, IReadOnlyList<SubscriberPart> subscribers)
    {
        var w = BodyBuffers.Body();
        WriteProfilesJobStart(w, "profile-subscription-bulk-delete-job");
        foreach (var subscriber in subscribers)
        {
            WriteSubscriber(w, subscriber, null, "UNSUBSCRIBED");
        }
        WriteProfilesJobEnd(w);
        WriteListRelationship(w, listId);
        var body = BodyBuffers.ToArray(w);
        return new KlaviyoRequest(KlaviyoEndpoint.UnsubscribeProfiles, KlaviyoApi.UnsubscribeProfilesPath, body);
    }

    /// <summary><c>DELETE /api/lists/{id}/relationships/profiles</c>: the profile ids taken off the list (consent unchanged).</summary>
    public static KlaviyoRequest RemoveFromList(string listId, IReadOnlyList<string> profileIds) =>
        KlaviyoRequest.Delete(KlaviyoEndpoint.RemoveProfilesFromList, AddToListPath(listId), ProfileIds(profileIds));

    /// <summary><c>POST /api/lists/{id}/relationships/profiles</c>: the profile ids added to the list.</summary>
    public static KlaviyoRequest AddToList(string listId, IReadOnlyList<string> profileIds) =>
        new(KlaviyoEndpoint.AddProfilesToList, AddToListPath(listId), ProfileIds(profileIds));

    // One profile of a subscription or unsubscription job (the consent verb decides which).
    private static void WriteSubscriber(Utf8JsonWriter w, SubscriberPart subscriber, string? profileId, string consent)
    {
        w.WriteStartObject();
        w.WriteString("type", "profile");
        if (profileId is not null)
        {
            w.WriteString("id", profileId);
        }
        w.WritePropertyName("attributes");
        w.WriteStartObject();
        if (subscriber.Email is not null)
        {
            w.WriteString("email", subscriber.Email);
        }
        if (subscriber.Phone is not null)
        {
            w.WriteString("phone_number", subscriber.Phone);
        }
        if (subscriber.BirthDate is not null)
        {
            w.WriteString("age_gated_date_of_birth", subscriber.BirthDate);
        }
        w.WritePropertyName("subscriptions");
        w.WriteStartObject();
        if (subscriber.EmailChannel)
        {
            WriteConsent(w, "email", consent, subscriber.ConsentedAt);
        }
        if (subscriber.SmsChannel)
        {
            WriteConsent(w, "sms", consent, subscriber.ConsentedAt);
        }
        EndObjects(w, 3);
    }

    // "relationships":{"list":{"data":{"type":"list","id":…}}}, then the job's "data" and the body closed.
    private static void WriteListRelationship(Utf8JsonWriter w, string listId)
    {
        w.WritePropertyName("relationships");
        w.WriteStartObject();
        w.WritePropertyName("list");
        w.WriteStartObject();
        w.WritePropertyName("data");
        WriteList(w, listId);
        EndObjects(w, 4);
    }

    // ListMembersAddQuery and ListMembersDeleteQuery share this body: {"data":[{"type":"profile","id":…}, …]}.
    private static byte[] ProfileIds(IReadOnlyList<string> profileIds)
    {
        var w = BodyBuffers.Body();
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartArray();
        foreach (var id in profileIds)
        {
            w.WriteStartObject();
            w.WriteString("type", "profile");
            w.WriteString("id", id);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        return BodyBuffers.ToArray(w);
    }

    /// <summary>
    /// <c>POST /api/data-privacy-deletion-jobs</c> (<c>DataPrivacyCreateDeletionJobQuery</c>): exactly one identifier per
    /// job, as Klaviyo requires; Klaviyo deletes every profile it matches.
    /// </summary>
    public static KlaviyoRequest DeletionJob(DeletionIdentifier identifier, string value)
    {
        var w = BodyBuffers.Body();
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartObject();
        w.WriteString("type", "data-privacy-deletion-job");
        w.WritePropertyName("attributes");
        w.WriteStartObject();
        w.WritePropertyName("profile");
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartObject();
        w.WriteString("type", "profile");
        if (identifier == DeletionIdentifier.ProfileId)
        {
            w.WriteString("id", value);
        }
        w.WritePropertyName("attributes"); // required by the schema, even when the id names the profile
        w.WriteStartObject();
        if (identifier != DeletionIdentifier.ProfileId)
        {
            w.WriteString(identifier == DeletionIdentifier.Email ? "email" : "phone_number", value);
        }
        EndObjects(w, 6);
        var body = BodyBuffers.ToArray(w);
        return new KlaviyoRequest(KlaviyoEndpoint.RequestDeletion, KlaviyoApi.RequestDeletionPath, body);
    }

    /// <summary>Profiles asked per page of a lookup: Klaviyo's maximum (default 20).</summary>
    public const int ProfilesPageSize = 100;

    /// <summary><c>GET /api/profiles?filter=equals(external_id,"…")</c>, the first page; only the ids are needed, so only
    /// <c>external_id</c> of the attributes is asked for.</summary>
    public static KlaviyoRequest ProfilesByExternalId(string externalId)
    {
        var literal = "\"" + externalId.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
        var query = "filter=" + Uri.EscapeDataString($"equals(external_id,{literal})")
            + "&page%5Bsize%5D=" + ProfilesPageSize.ToString(System.Globalization.CultureInfo.InvariantCulture)
            + "&fields%5Bprofile%5D=external_id";
        return KlaviyoRequest.Get(KlaviyoEndpoint.GetProfiles, KlaviyoApi.ProfilesPath + "?" + query);
    }

    // {"data":{"type":…,"attributes":{"profiles":{"data":[ — the items, then WriteProfilesJobEnd closes to "data" open.
    private static void WriteProfilesJobStart(Utf8JsonWriter w, string type, string? customSource = null, bool historical = false)
    {
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartObject();
        w.WriteString("type", type);
        w.WritePropertyName("attributes");
        w.WriteStartObject();
        if (customSource is not null)
        {
            w.WriteString("custom_source", customSource);
        }
        if (historical)
        {
            w.WriteBoolean("historical_import", true);
        }
        w.WritePropertyName("profiles");
        w.WriteStartObject();
        w.WritePropertyName("data");
        w.WriteStartArray();
    }

    private static void WriteProfilesJobEnd(Utf8JsonWriter w)
    {
        w.WriteEndArray();
        EndObjects(w, 2);
    }

    private static void WriteList(Utf8JsonWriter w, string listId)
    {
        w.WriteStartObject();
        w.WriteString("type", "list");
        w.WriteString("id", listId);
        w.WriteEndObject();
    }

    private static void WriteConsent(Utf8JsonWriter w, string channel, string consent, DateTime? consentedAt)
    {
        w.WritePropertyName(channel);
        w.WriteStartObject();
        w.WritePropertyName("marketing");
        w.WriteStartObject();
        w.WriteString("consent", consent);
        if (consentedAt is { } at)
        {
            w.WriteString("consented_at", at);
        }
        EndObjects(w, 2);
    }

    private static void EndObjects(Utf8JsonWriter w, int count)
    {
        for (var i = 0; i < count; i++)
        {
            w.WriteEndObject();
        }
    }

    private static void Append(byte[] body, ref int at, ReadOnlySpan<byte> part)
    {
        part.CopyTo(body.AsSpan(at));
        at += part.Length;
    }

    private sealed record ListPath(string ListId, string Path);

    private static ListPath? s_lastListPath;

    // Most events name the same list (the ListId setting), so the last path is kept rather than built per call.
    private static string AddToListPath(string listId)
    {
        var last = s_lastListPath;
        if (last is null || !string.Equals(last.ListId, listId, StringComparison.Ordinal))
        {
            last = new ListPath(listId, KlaviyoApi.AddProfilesToListPath(listId));
            s_lastListPath = last;
        }
        return last.Path;
    }
}

/// <summary>What one deletion job names (Klaviyo takes exactly one per job).</summary>
internal enum DeletionIdentifier
{
    Email,
    Phone,
    ProfileId,
}
