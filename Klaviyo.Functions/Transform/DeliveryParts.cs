namespace Klaviyo.Functions.Transform;

/// <summary>
/// What the transform knows about one deliverable event, named for what it is rather than for the call that carries
/// it: the profile, the event, the list step. <c>Calls.KlaviyoCalls</c> writes every Klaviyo call from these parts,
/// single and bulk alike, so the two agree by construction and nothing reads our own bodies back.
/// </summary>
internal abstract record DeliveryParts
{
    private protected DeliveryParts(IReadOnlyList<string>? warnings) => Warnings = warnings ?? [];

    /// <summary>Non-fatal findings worth a log line (for example a phone number kept as a property).</summary>
    public IReadOnlyList<string> Warnings { get; }
}

/// <summary>
/// track, screen, page: the events of one message for one profile. One event, except an Order Completed under
/// <c>Klaviyo__OrderCompleted=placedOrder</c>: Placed Order, then one Ordered Product per item (spec 5). They travel
/// together: one message, one outcome, never split across bulk calls.
/// </summary>
internal sealed record EventParts(IReadOnlyList<EventPart> Events, IReadOnlyList<string>? Warnings = null) : DeliveryParts(Warnings)
{
    public EventParts(EventPart single, IReadOnlyList<string>? warnings = null)
        : this([single], warnings)
    {
    }
}

/// <summary>identify, group: a profile update (profile-import), then the list step when there is a list.</summary>
/// <param name="Time">The event's time (for merging several updates of one profile oldest first, spec 8.3);
/// <see cref="DateTime.MinValue"/> when it has none.</param>
internal sealed record ProfileParts(ProfilePart Profile, DateTime Time, ListPart? List, IReadOnlyList<string>? Warnings = null) : DeliveryParts(Warnings);

/// <summary>
/// A Klaviyo profile resource object as the transform wrote it (<c>{"type":"profile",["id":…,]"attributes":{…}}</c>):
/// the item of a profile-import body, of an import job's <c>profiles.data</c>, or of an event's <c>profile.data</c>.
/// The identifiers (id, email, phone_number, external_id, anonymous_id, _kx) are written first, so the first
/// <see cref="IdentityLength"/> bytes are the profile's identity (spec 8.2/8.3: "same identifiers").
/// </summary>
internal sealed record ProfilePart(ReadOnlyMemory<byte> Data, int IdentityLength)
{
    /// <summary>The bytes that identify the profile: equal for two updates of the same person, and only then.</summary>
    public ReadOnlyMemory<byte> IdentityKey => Data[..IdentityLength];

    /// <summary>
    /// The identifiers as text, in the form Klaviyo's import errors are matched by (<see cref="Identity.KeyText"/>):
    /// set on a profile-import's profile, so an import job's tracker can hash them without reading the job body back.
    /// </summary>
    public string? IdentityText { get; init; }
}

/// <summary>
/// An event's attributes without the profile (<c>{"metric":…,"unique_id":…,"time":…,"value":…,"properties":…}</c>),
/// the item of an event bulk entry and, with the profile added, the single call's attributes. Metric, then unique_id,
/// then time are written first: the first <see cref="DedupeLength"/> bytes are metric + unique_id (or metric + time
/// when there is no unique_id), which with the profile's identity is what Klaviyo deduplicates on (spec 8.2).
/// </summary>
internal sealed record EventPart(ProfilePart Profile, ReadOnlyMemory<byte> Attributes, int DedupeLength)
{
    public ReadOnlyMemory<byte> DedupeAttributes => Attributes[..DedupeLength];
}

/// <summary>What the list step of identify and group does with the profile (spec 5).</summary>
internal enum ListAction
{
    /// <summary>Added to the list, consent unchanged (<c>POST /api/lists/{id}/relationships/profiles</c>).</summary>
    Add,

    /// <summary>Subscribed to marketing on the list's channels (<c>POST /api/profile-subscription-bulk-create-jobs</c>).</summary>
    Subscribe,

    /// <summary>Marketing consent revoked (<c>POST /api/profile-subscription-bulk-delete-jobs</c>).</summary>
    Unsubscribe,

    /// <summary>Taken off the list, consent unchanged (<c>DELETE /api/lists/{id}/relationships/profiles</c>).</summary>
    Remove,
}

/// <summary>
/// The list step of identify and group (spec 5): <see cref="Action"/> on <see cref="ListId"/>. A subscription or an
/// unsubscription names its <see cref="Subscriber"/> (the channels and identifiers it is for); an addition or a removal
/// needs the profile id its profile-import answers with.
/// </summary>
internal sealed record ListPart(string ListId, ListAction Action, SubscriberPart? Subscriber = null)
{
    /// <summary>True when the step changes consent (subscribe or unsubscribe) rather than list membership.</summary>
    public bool ChangesConsent => Action is ListAction.Subscribe or ListAction.Unsubscribe;
}

/// <summary>
/// The profile of a subscription or an unsubscription: its email and E.164 phone, the channels concerned, and for a
/// subscription the consent time (<c>historical_import</c>), the SMS age gate's date of birth (<c>yyyy-MM-dd</c>) and
/// the <c>custom_source</c> of the consent record.
/// </summary>
internal sealed record SubscriberPart(string? Email, string? Phone, bool EmailChannel, bool SmsChannel,
    DateTime? ConsentedAt = null, string? BirthDate = null, string? CustomSource = null);

/// <summary>
/// delete (spec 5.7): the person's identifiers, each asked of Klaviyo in its own deletion job; a <paramref name="UserId"/>
/// is first resolved to profile ids. <paramref name="AdminRequest"/>: queued by <c>POST /api/privacy/deletions</c>, so
/// delivered whatever <c>Privacy__DeleteEvents</c> says.
/// </summary>
/// <param name="Phone">E.164.</param>
/// <param name="ProfileId">A Klaviyo profile id (<c>context.externalId</c> of type <c>klaviyo-profileId</c>).</param>
internal sealed record DeletionParts(string? Email, string? Phone, string? UserId, string? ProfileId, bool AdminRequest) : DeliveryParts((IReadOnlyList<string>?)null);
