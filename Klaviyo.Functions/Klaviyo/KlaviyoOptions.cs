using System.ComponentModel.DataAnnotations;

namespace Klaviyo.Functions.Klaviyo;

/// <summary>Consent channels a subscription can name (spec section 3, <c>Klaviyo:Consent</c>).</summary>
[Flags]
internal enum ConsentChannels
{
    None = 0,
    Email = 1,
    Sms = 2,
}

/// <summary>Settings of section <c>Klaviyo</c> (app settings <c>Klaviyo__Name</c>); spec section 3.</summary>
internal sealed class KlaviyoOptions
{
    public const string SectionName = "Klaviyo";

    /// <summary>Klaviyo private key (<c>pk_…</c>). Required. Never logged.</summary>
    public string PrivateApiKey { get; set; } = "";

    /// <summary>Accepted for parity with the RudderStack destination; cloud mode does not use it. Default empty.</summary>
    public string PublicApiKey { get; set; } = "";

    /// <summary>Default list for identify, by the one rule of <see cref="ListIds"/>. Default empty (no list).</summary>
    public string ListId { get; set; } = "";

    /// <summary>Comma-separated channels to subscribe: <c>email</c>, <c>sms</c>. Default <c>email</c>.</summary>
    public string Consent { get; set; } = "email";

    /// <summary>Also subscribe the phone number to SMS marketing. Default false.</summary>
    public bool SmsConsent { get; set; }

    /// <summary>Never send <c>external_id</c>; carry userId as profile property <c>_id</c>. Default false.</summary>
    public bool EnforceEmailAsPrimary { get; set; }

    /// <summary>Send page events as Klaviyo events (otherwise they are skipped). Default false.</summary>
    public bool SendPageAsTrack { get; set; }

    /// <summary>With <see cref="SendPageAsTrack"/>, attach the page properties. Default false.</summary>
    public bool AdditionalPageInfo { get; set; }

    /// <summary>Flatten nested profile and event properties to dotted keys. Default false.</summary>
    public bool FlattenProperties { get; set; }

    /// <summary>The <c>revision</c> header. Default <see cref="KlaviyoApi.DefaultRevision"/>, its one home (no template sets it).</summary>
    public string Revision { get; set; } = KlaviyoApi.DefaultRevision;

    /// <summary>Base URL of Klaviyo's API. Default <c>https://a.klaviyo.com</c>.</summary>
    public string BaseUrl { get; set; } = KlaviyoApi.DefaultBaseUrl;

    /// <summary>Local mode only: print Klaviyo calls instead of sending them. Default false.</summary>
    public bool DryRun { get; set; }

    /// <summary>What <c>subscribe: false</c> does (spec 5): <c>unsubscribe</c> (default, RudderStack's current
    /// destination) or <c>addToList</c> (version 3's behaviour).</summary>
    public string OnSubscribeFalse { get; set; } = OnSubscribeFalseUnsubscribe;

    /// <summary><c>custom_source</c> stored on the consent record of subscriptions; empty sends none.</summary>
    public string CustomSource { get; set; } = "";

    public const string OnSubscribeFalseUnsubscribe = "unsubscribe";
    public const string OnSubscribeFalseAddToList = "addToList";

    /// <summary>What a group event does (spec 5): <c>list</c> (default: <c>groupId</c> is a Klaviyo list, RudderStack's
    /// meaning), <c>profile</c> (the profile-import alone) or <c>skip</c> (skipped: Segment's <c>groupId</c> is an
    /// account, not a list).</summary>
    public string GroupMode { get; set; } = GroupModeList;

    public const string GroupModeList = "list";
    public const string GroupModeProfile = "profile";
    public const string GroupModeSkip = "skip";

    /// <summary>The accepted <see cref="GroupMode"/> values, for start-up messages.</summary>
    public static readonly string[] GroupModes = [GroupModeList, GroupModeProfile, GroupModeSkip];

    public bool GroupModeIs(string mode) => string.Equals(GroupMode?.Trim(), mode, StringComparison.OrdinalIgnoreCase);

    /// <summary>What an "Order Completed" track becomes (spec 5): <c>orderCompleted</c> (default: a custom metric of
    /// that name, as RudderStack sends it; the spec's <c>event</c> means the same) or <c>placedOrder</c> (Placed Order
    /// plus one Ordered Product per item, the metrics Klaviyo's revenue reporting reads).</summary>
    public string OrderCompleted { get; set; } = OrderCompletedAsEvent;

    public const string OrderCompletedAsEvent = "orderCompleted";
    public const string OrderCompletedAsPlacedOrder = "placedOrder";

    /// <summary>The spec's name (version 4, section 3) for <see cref="OrderCompletedAsEvent"/>.</summary>
    public const string OrderCompletedAsEventAlias = "event";

    /// <summary>Metric of the order event under <c>placedOrder</c>. Default <c>Placed Order</c>; under 128 characters.</summary>
    public string PlacedOrderMetric { get; set; } = "Placed Order";

    /// <summary>Metric of each ordered item under <c>placedOrder</c>. Default <c>Ordered Product</c>; under 128
    /// characters, distinct from <see cref="PlacedOrderMetric"/>.</summary>
    public string OrderedProductMetric { get; set; } = "Ordered Product";

    /// <summary>True when Order Completed becomes Placed Order + Ordered Product (<see cref="OrderCompleted"/>).</summary>
    public bool PlacesOrders => string.Equals(OrderCompleted?.Trim(), OrderCompletedAsPlacedOrder, StringComparison.OrdinalIgnoreCase);

    /// <summary>True when <see cref="OrderCompleted"/> names a known mode.</summary>
    public bool OrderCompletedIsKnown => PlacesOrders
        || string.Equals(OrderCompleted?.Trim(), OrderCompletedAsEvent, StringComparison.OrdinalIgnoreCase)
        || string.Equals(OrderCompleted?.Trim(), OrderCompletedAsEventAlias, StringComparison.OrdinalIgnoreCase);

    /// <summary>True when <c>subscribe: false</c> unsubscribes (<see cref="OnSubscribeFalse"/>).</summary>
    public bool UnsubscribesOnFalse => string.Equals(OnSubscribeFalse, OnSubscribeFalseUnsubscribe, StringComparison.OrdinalIgnoreCase);

    /// <summary>The channels named by <see cref="Consent"/> (legacy values ignored).</summary>
    public ConsentChannels ConsentChannels => ParseConsent(Consent, out _, out _);

    /// <summary>Parses a comma-separated consent list. Unknown values are returned in <paramref name="unknown"/>;
    /// the legacy RudderStack values <c>web</c>, <c>directmail</c>, <c>mobile</c> in <paramref name="legacy"/>.</summary>
    public static ConsentChannels ParseConsent(string? value, out List<string> unknown, out List<string> legacy)
    {
        unknown = [];
        legacy = [];
        var channels = ConsentChannels.None;
        foreach (var raw in (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (raw.ToLowerInvariant())
            {
                case "email": channels |= ConsentChannels.Email; break;
                case "sms": channels |= ConsentChannels.Sms; break;
                case "web" or "directmail" or "mobile": legacy.Add(raw); break;
                default: unknown.Add(raw); break;
            }
        }
        return channels;
    }

    public override string ToString() =>
        $"KlaviyoOptions {{ BaseUrl = {BaseUrl}, Revision = {Revision}, ListId = {ListId}, Consent = {Consent}, PrivateApiKey = {(string.IsNullOrEmpty(PrivateApiKey) ? "(empty)" : "***")} }}";
}
